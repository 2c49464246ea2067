"""Wall-clock overhead of SADATrainer over Trainer with the identical transform (fixed strength).

    python benchmarks/overhead.py                 # CPU: small ResNet and ViT on 2,000 CIFAR-10 images
    python benchmarks/overhead.py --device-note "H100, bf16" --models vit-base --bf16   # on a GPU

Both trainers get the same data, model initialisation, seed and SADATransform (strategy
'trivialaugment' with warmup_strength 0.5, so strengths never change); only SADA's bookkeeping
(popping the index, gathering and storing the predictions, epoch ends) differs. Runs alternate
Trainer / SADATrainer; the epoch time is the median over runs of each run's median epoch (the
first epoch, with its warm-up, excluded). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import (
    ResNetConfig,
    ResNetForImageClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
)

from sada_hf import SADAConfig, SADATrainer, SADATransform, TransformEpochCallback
from sada_hf.data import load_cifar10

MODELS = {
    "resnet-small": (
        32,
        lambda: ResNetForImageClassification(
            ResNetConfig(
                embedding_size=64, hidden_sizes=[64, 128, 256], depths=[2, 2, 2], layer_type="basic", num_labels=10
            )
        ),
    ),
    "vit-small": (
        32,
        lambda: ViTForImageClassification(
            ViTConfig(
                image_size=32,
                patch_size=4,
                hidden_size=128,
                num_hidden_layers=6,
                num_attention_heads=4,
                intermediate_size=256,
                num_labels=10,
            )
        ),
    ),
    "vit-base": (224, lambda: ViTForImageClassification(ViTConfig(image_size=224, patch_size=16, num_labels=10))),
}


class EpochTimer(TrainerCallback):
    def __init__(self):
        self.durations = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.durations.append(time.perf_counter() - self.start)


def timed_run(trainer_class, model_name: str, dataset, options, step_times: list[float]) -> float:
    size, build = MODELS[model_name]
    config = SADAConfig(strategy="trivialaugment", warmup_strength=0.5, augmentation_seed=0)
    transform = SADATransform(size=size, config=config)
    torch.manual_seed(0)
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir, num_train_epochs=options.epochs, per_device_train_batch_size=options.batch_size,
            save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True, seed=0,
            remove_unused_columns=False, dataloader_num_workers=options.workers, bf16=options.bf16,
            dataloader_persistent_workers=options.workers > 0,
        )  # fmt: skip
        callbacks = [timer] if trainer_class is SADATrainer else [timer, TransformEpochCallback(transform)]
        trainer = trainer_class(
            model=build(), args=args, train_dataset=dataset.with_transform(transform), callbacks=callbacks
        )
        if trainer_class is SADATrainer:
            observe = trainer._observe

            def timed_observe(indices, logits):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                start = time.perf_counter()
                observe(indices, logits)
                step_times.append(time.perf_counter() - start)

            trainer._observe = timed_observe
        trainer.train()
    return statistics.median(timer.durations[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["resnet-small", "vit-small"])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--device-note", default=f"CPU, {torch.get_num_threads()} threads")
    options = parser.parse_args()
    dataset = load_cifar10("train", examples_per_class=options.images // 10)
    dataset = dataset.add_column("index", list(range(len(dataset))))

    print(
        f"# SADATrainer overhead: {len(dataset)} CIFAR-10 images, batch {options.batch_size}, {options.epochs} epochs, "
        f"{options.runs} interleaved runs each, {options.device_note}\n"
    )
    print("| model | Trainer s/epoch | SADATrainer s/epoch | ratio | bookkeeping ms/step (median) |")
    print("|---|---|---|---|---|")
    for model_name in options.models:
        plain, sada, steps = [], [], []
        for _ in range(options.runs):
            plain.append(timed_run(Trainer, model_name, dataset, options, []))
            sada.append(timed_run(SADATrainer, model_name, dataset, options, steps))
        base, ours = statistics.median(plain), statistics.median(sada)
        print(
            f"| {model_name} | {base:.2f} | {ours:.2f} | {ours / base:.3f} | {statistics.median(steps) * 1e3:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
