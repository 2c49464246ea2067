"""Does SADA's per-example assignment carry a signal? Strength dynamics of one accuracy-benchmark run.

    python benchmarks/strength_dynamics.py            # the ResNet of benchmarks/accuracy.py, 80 epochs

Trains the accuracy benchmark's ResNet with its recipe and SADA (rank normalisation) on 500 CIFAR-10
images per class, records every example's strength at each epoch end, and prints a Markdown table:
how much of the ordering survives from one epoch to the next and to the last epoch (Spearman), and,
for the final model, the mean strength and rank correlation with the loss of the training images
it gets right and wrong (SADA should go easy on hard examples: those should get lower strengths).
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments

from sada_hf import SADAConfig, SADATrainer
from sada_hf.data import load_cifar10
from sada_hf.job import DataArguments, ModelArguments, build_model_and_processor, build_transforms

from accuracy import MODELS


class StrengthRecorder(TrainerCallback):
    """Copies the strengths published at each epoch end (registered after SADA's own callback)."""

    def __init__(self, trainer: SADATrainer) -> None:
        self.trainer = trainer
        self.strengths: list[np.ndarray] = []

    def on_epoch_end(self, args, state, control, **kwargs):
        self.strengths.append(self.trainer.sada_state.strengths.numpy().copy())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation over the examples where both are defined."""
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < 3:
        return float("nan")
    ranks = [np.argsort(np.argsort(x[both])) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--examples-per-class", type=int, default=500)
    parser.add_argument("--normalization", choices=["rank", "minmax"], default="rank")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()

    flags = MODELS["resnet"]
    model_args = ModelArguments(model_type="resnet", config_overrides=flags[flags.index("--config_overrides") + 1])
    train = load_cifar10("train", options.examples_per_class, seed=options.seed)
    torch.manual_seed(options.seed)
    model, processor = build_model_and_processor(model_args, train.features["label"].names)
    config = SADAConfig(normalization=options.normalization, augmentation_seed=options.seed)
    train_transform, eval_transform = build_transforms(DataArguments(builtin_dataset="cifar10"), processor, config)

    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir,
            num_train_epochs=options.epochs,
            learning_rate=2e-3,
            weight_decay=0.05,
            warmup_steps=0.05,
            lr_scheduler_type="cosine",
            per_device_train_batch_size=128,
            per_device_eval_batch_size=500,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="epoch",
            disable_tqdm=True,
            report_to="none",
            dataloader_num_workers=1,
            dataloader_persistent_workers=True,
            dataloader_pin_memory=torch.cuda.is_available(),
            seed=options.seed,
        )
        trainer = SADATrainer(model=model, args=args, train_dataset=train.with_transform(train_transform))
        recorder = StrengthRecorder(trainer)
        trainer.add_callback(recorder)
        trainer.train()
        prediction = trainer.predict(train.with_transform(eval_transform))

    logits = torch.from_numpy(prediction.predictions).double()
    labels = torch.from_numpy(prediction.label_ids).long()
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none").numpy()
    wrong = (logits.argmax(-1) != labels).numpy()
    history, final = recorder.strengths, recorder.strengths[-1]

    print(f"\nSADA ({options.normalization}), {len(train)} CIFAR-10 images, seed {options.seed}\n")
    print("| after epoch | examples with a strength | Spearman with previous epoch | Spearman with last epoch |")
    print("|---|---|---|---|")
    for epoch in sorted(
        {3, 4, 5, 10, *range(20, options.epochs + 1, 20), options.epochs} & set(range(2, options.epochs + 1))
    ):
        current = history[epoch - 1]
        print(
            f"| {epoch} | {np.isfinite(current).mean():.0%} | {spearman(current, history[epoch - 2]):.2f} "
            f"| {spearman(current, final):.2f} |"
        )
    print("\n| final model on its training images | images | mean final strength |")
    print("|---|---|---|")
    for name, rows in (("classified right", ~wrong), ("classified wrong", wrong)):
        print(f"| {name} | {rows.sum()} | {np.nanmean(final[rows]):.3f} |")
    print(f"\nSpearman(final strength, final training loss): {spearman(final, losses):.2f}")


if __name__ == "__main__":
    main()
