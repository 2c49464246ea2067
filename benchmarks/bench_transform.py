"""Throughput of SADATransform against torchvision's TrivialAugmentWide with the same base pipeline.

    python benchmarks/bench_transform.py        # 32 and 224 pixels, one process, real CIFAR-10 JPEGs

Both pipelines start from the JPEG bytes and end with a normalised float batch (B x 3 x H x W):
decode -> resize to the size -> random crop (padding size/8) + horizontal flip -> one op ->
to tensor + normalise. SADATransform runs with per-example strengths published (no warm-up).
Prints a Markdown table of images per second (median of repeats).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import datasets
import torch
from PIL import Image
from torchvision import transforms as T

from sada_hf import SADAConfig, SADATransform
from sada_hf.data import load_cifar10
from sada_hf.strengths import StrengthSchedule

MEAN = STD = (0.5, 0.5, 0.5)


def trivialaugment_pipeline(size: int) -> T.Compose:
    return T.Compose(
        [
            T.Resize(size),
            T.RandomCrop(size, padding=round(size / 8)),
            T.RandomHorizontalFlip(),
            T.TrivialAugmentWide(),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


def sada_transform(size: int, num_examples: int) -> SADATransform:
    schedule = StrengthSchedule(num_examples)
    schedule.publish(torch.rand(num_examples, generator=torch.Generator().manual_seed(0)))
    return SADATransform(size=size, mean=MEAN, std=STD).bound_to(schedule, SADAConfig(augmentation_seed=0))


def sada_runner(transform: SADATransform, num_images: int):
    """Decode a batch of JPEGs and run the SADA transform on it, at consecutive dataset indices."""
    position = 0

    def run(batch: list[bytes]) -> torch.Tensor:
        nonlocal position
        indices = [(position + i) % num_images for i in range(len(batch))]
        position = (position + len(batch)) % num_images
        images = [Image.open(io.BytesIO(b)) for b in batch]
        return transform({"image": images, "label": [0] * len(batch), "index": indices})["pixel_values"]

    return run


def trivialaugment_runner(pipeline: T.Compose):
    """Decode a batch of JPEGs, run torchvision's pipeline per image and stack, as a collate would."""

    def run(batch: list[bytes]) -> torch.Tensor:
        return torch.stack([pipeline(Image.open(io.BytesIO(b)).convert("RGB")) for b in batch])

    return run


def images_per_second(run, batches: list[list[bytes]], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            run(batch)
        rates.append(sum(len(b) for b in batches) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    torch.set_num_threads(1)  # one process, one thread: what a dataloader worker gets

    dataset = load_cifar10("test", examples_per_class=options.images // 10)
    dataset = dataset.cast_column("image", datasets.Image(decode=False))
    jpegs = [cell["bytes"] for cell in dataset["image"]]
    batches = [jpegs[i : i + options.batch] for i in range(0, len(jpegs), options.batch)]

    print(f"# Transform throughput: {len(jpegs)} CIFAR-10 JPEGs, batch {options.batch}, 1 process, 1 thread\n")
    print("| size | SADATransform (img/s) | TrivialAugmentWide (img/s) | ratio |")
    print("|---|---|---|---|")
    for size in (32, 224):
        ours = images_per_second(sada_runner(sada_transform(size, len(jpegs)), len(jpegs)), batches, options.repeats)
        theirs = images_per_second(trivialaugment_runner(trivialaugment_pipeline(size)), batches, options.repeats)
        print(f"| {size} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()
