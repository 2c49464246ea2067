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

    dataset = load_cifar10("test", examples_per_class=options.images // 10).cast_column(
        "image", load_cifar10("test", examples_per_class=1).features["image"].__class__(decode=False)
    )
    jpegs = [cell["bytes"] for cell in dataset["image"]]
    batches = [jpegs[i : i + options.batch] for i in range(0, len(jpegs), options.batch)]

    print(f"# Transform throughput: {len(jpegs)} CIFAR-10 JPEGs, batch {options.batch}, 1 process, 1 thread\n")
    print("| size | SADATransform (img/s) | TrivialAugmentWide (img/s) | ratio |")
    print("|---|---|---|---|")
    for size in (32, 224):
        sada = sada_transform(size, len(jpegs))

        def run_sada(batch, start=[0]):
            indices = list(range(start[0], start[0] + len(batch)))
            start[0] = (start[0] + len(batch)) % len(jpegs)
            return sada({"image": [Image.open(io.BytesIO(b)) for b in batch], "label": [0] * len(batch), "index": indices})

        pipeline = trivialaugment_pipeline(size)

        def run_trivialaugment(batch):
            return torch.stack([pipeline(Image.open(io.BytesIO(b)).convert("RGB")) for b in batch])

        ours = images_per_second(run_sada, batches, options.repeats)
        theirs = images_per_second(run_trivialaugment, batches, options.repeats)
        print(f"| {size} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()
