"""Does SADA's per-example assignment carry a signal? Strength dynamics of accuracy-benchmark runs.

    python benchmarks/strength_dynamics.py run --influence train_step   # the ResNet of accuracy.py, 80 epochs
    python benchmarks/strength_dynamics.py run --influence probe
    python benchmarks/strength_dynamics.py table                        # both, from the results file

Trains the accuracy benchmark's ResNet with its recipe and SADA (rank normalisation) on 500 CIFAR-10
images per class, records every example's strength at each epoch end, and appends to
`results/strength_dynamics.jsonl`: how much of the ordering survives from one epoch to the next and
to the last epoch (Spearman), and, for the final model, the mean strength of the training images it
gets right and wrong and the rank correlation of strength with the clean training loss (SADA should go
easy on hard examples: those should get lower strengths).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments

from sada_hf import SADAConfig, SADATrainer
from sada_hf.arguments import ModelArguments
from sada_hf.data import DataArguments, load_cifar10
from sada_hf.job import build_transforms
from sada_hf.modeling import build_model_and_processor

from accuracy import MODELS
from provenance import provenance

RESULTS = Path(__file__).parent / "results" / "strength_dynamics.jsonl"


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


def run(options: argparse.Namespace) -> None:
    flags = MODELS["resnet"]
    model_args = ModelArguments(model_type="resnet", config_overrides=flags[flags.index("--config_overrides") + 1])
    train = load_cifar10("train", options.examples_per_class, seed=options.seed)
    torch.manual_seed(options.seed)
    model, processor = build_model_and_processor(model_args, train.features["label"].names)
    config = SADAConfig(
        normalization=options.normalization, influence=options.influence, augmentation_seed=options.seed
    )
    train_transform, eval_transform = build_transforms(DataArguments(builtin_dataset="cifar10"), processor, config)

    start = time.time()
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
    epochs = sorted(
        {3, 4, 5, 10, *range(20, options.epochs + 1, 20), options.epochs} & set(range(2, options.epochs + 1))
    )
    row = {
        "influence": options.influence,
        "normalization": options.normalization,
        "seed": options.seed,
        "examples": len(train),
        "epochs": options.epochs,
        "stability": [
            {
                "epoch": epoch,
                "defined": float(np.isfinite(history[epoch - 1]).mean()),
                "previous": spearman(history[epoch - 1], history[epoch - 2]),
                "last": spearman(history[epoch - 1], final),
            }
            for epoch in epochs
        ],
        "right": {"images": int((~wrong).sum()), "strength": float(np.nanmean(final[~wrong]))},
        "wrong": {"images": int(wrong.sum()), "strength": float(np.nanmean(final[wrong]))},
        "spearman_strength_loss": spearman(final, losses),
        "minutes": (time.time() - start) / 60,
        **provenance(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    table(options)


def table(options: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    for row in rows:
        print(
            f"\n**influence={row['influence']}**, SADA ({row['normalization']}), {row['examples']} CIFAR-10 images, "
            f"{row['epochs']} epochs, seed {row['seed']} ({row['minutes']:.1f} min, {row['machine']}, {row['date']})\n"
        )
        print("| after epoch | examples with a strength | Spearman with previous epoch | Spearman with last epoch |")
        print("|---|---|---|---|")
        for entry in row["stability"]:
            print(f"| {entry['epoch']} | {entry['defined']:.0%} | {entry['previous']:.2f} | {entry['last']:.2f} |")
    print(
        "\n| influence | final strength: images classified right | classified wrong | Spearman(strength, clean loss) |"
    )
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['influence']} (seed {row['seed']}) | {row['right']['strength']:.3f} ({row['right']['images']}) "
            f"| {row['wrong']['strength']:.3f} ({row['wrong']['images']}) | {row['spearman_strength_loss']:+.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--influence", choices=["train_step", "probe"], default="train_step")
    runner.add_argument("--epochs", type=int, default=80)
    runner.add_argument("--examples-per-class", type=int, default=500)
    runner.add_argument("--normalization", choices=["rank", "minmax"], default="rank")
    runner.add_argument("--seed", type=int, default=0)
    commands.add_parser("table")
    options = parser.parse_args()
    run(options) if options.command == "run" else table(options)


if __name__ == "__main__":
    main()
