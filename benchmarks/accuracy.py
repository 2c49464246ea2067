"""Does SADA pay? Test accuracy of every strategy on low-data CIFAR-10, through `sada-hf train`.

    # run (resumable: finished runs in the results file are skipped), then print the table
    python benchmarks/accuracy.py run --model resnet --examples-per-class 500 --epochs 80 --seeds 0 1 2
    python benchmarks/accuracy.py table

Every run is one `sada-hf train` subprocess on the CIFAR-10 archive (`--builtin_dataset cifar10`):
a seeded stratified subset for training, the full 10,000-image test set for evaluation, one
recipe for all strategies; only the strategy flags differ. Strategies compared at the same amount
of augmentation (mean strength 0.5) use rank normalisation, so that only the per-example
assignment differs between sada_rank, sada_inverted, sada_shuffled and the random baselines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sada_hf.cli import DEMO_DEFAULTS

RESULTS = Path(__file__).parent / "results" / "accuracy.jsonl"

STRATEGIES = {
    "none": ["--strategy", "none"],
    "trivialaugment": ["--strategy", "trivialaugment"],
    "random": ["--strategy", "random"],
    "entropy": ["--strategy", "entropy"],
    "sada_minmax": ["--strategy", "sada", "--normalization", "minmax"],
    "sada_rank": ["--strategy", "sada", "--normalization", "rank"],
    "sada_inverted": ["--strategy", "sada", "--normalization", "rank", "--direction", "unstable_strong"],
    "sada_shuffled": ["--strategy", "sada_shuffled", "--normalization", "rank"],
}

MODELS = {
    # Small models trained from scratch at 32 px; capacity chosen so that augmentation matters.
    "resnet": [
        "--model_type",
        "resnet",
        "--config_overrides",
        "embedding_size=32,hidden_sizes=[32,64,128],depths=[2,2,2],layer_type=basic",
    ],
    "vit": [
        "--model_type",
        "vit",
        "--config_overrides",
        "hidden_size=64,num_hidden_layers=4,num_attention_heads=4,intermediate_size=128",
    ],
    # The embedded default of `sada-hf train` (scikit-learn digits, small ViT, its own settings).
    "digits": ["--builtin_dataset", "digits"],
}


def setting(options: argparse.Namespace) -> dict:
    """What defines a comparison: everything but the strategy and the seed."""
    if options.model == "digits":
        return {
            "model": "digits", "examples_per_class": "all", "epochs": DEMO_DEFAULTS["num_train_epochs"],
            "config_overrides": "default ViT", "learning_rate": DEMO_DEFAULTS["learning_rate"], "window": 10,
        }  # fmt: skip
    flags = MODELS[options.model]
    return {
        "model": options.model,
        "examples_per_class": options.examples_per_class,
        "epochs": options.epochs,
        "config_overrides": options.config_overrides or flags[flags.index("--config_overrides") + 1],
        "learning_rate": options.learning_rate,
        "window": options.window,
    }


def recipe(options: argparse.Namespace) -> list[str]:
    """The training settings every strategy shares."""
    quiet = ["--eval_strategy", "no", "--save_strategy", "no", "--disable_tqdm", "true", "--report_to", "none"]
    if options.model == "digits":  # the embedded default run of `sada-hf train`, as it is
        return quiet
    return [
        "--builtin_dataset", "cifar10",
        "--examples_per_class", str(options.examples_per_class),
        "--num_train_epochs", str(options.epochs),
        "--learning_rate", str(options.learning_rate),
        "--weight_decay", "0.05",
        "--warmup_steps", "0.05",
        "--lr_scheduler_type", "cosine",
        "--per_device_train_batch_size", str(options.batch_size),
        "--per_device_eval_batch_size", "500",
        "--window", str(options.window),
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--logging_strategy", "epoch",
        "--disable_tqdm", "true",
        "--report_to", "none",
        "--dataloader_num_workers", str(options.workers),
        "--dataloader_persistent_workers", "true",
    ]  # fmt: skip


def run_one(options: argparse.Namespace, strategy: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as output_dir:
        argv = MODELS[options.model] + recipe(options) + STRATEGIES[strategy] + [
            "--seed", str(seed), "--output_dir", output_dir,
        ]  # fmt: skip
        if options.config_overrides and options.model != "digits":
            argv[argv.index("--config_overrides") + 1] = options.config_overrides
        start = time.time()
        process = subprocess.run(
            [sys.executable, "-m", "sada_hf.cli", "train", *argv],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        if process.returncode != 0:
            raise RuntimeError(f"run failed ({strategy}, seed {seed}):\n{process.stderr[-4000:]}")
        evaluation = json.loads(Path(output_dir, "eval_results.json").read_text())
        state = json.loads(Path(output_dir, "trainer_state.json").read_text())
        sada = [e for e in state["log_history"] if "sada/expected_strength" in e]
        return {
            **setting(options),
            "strategy": strategy,
            "seed": seed,
            "accuracy": evaluation["eval_accuracy"],
            # Expected strength of a visit in epochs 2..E (published at the ends of epochs 1..E-1).
            "mean_strength": statistics.mean(e["sada/expected_strength"] for e in sada[:-1]),
            "minutes": (time.time() - start) / 60,
            "command": "sada-hf train " + shlex.join(argv[:-2]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
        }


def key(row: dict) -> tuple:
    return tuple(
        row[k]
        for k in (
            "model",
            "examples_per_class",
            "epochs",
            "config_overrides",
            "learning_rate",
            "window",
            "strategy",
            "seed",
        )
    )


def run(options: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    done = {key(json.loads(line)) for line in RESULTS.read_text().splitlines()} if RESULTS.exists() else set()
    for seed in options.seeds:  # seed-major: partial results already cover every strategy
        for strategy in options.strategies:
            probe = {**setting(options), "strategy": strategy, "seed": seed}
            if key(probe) in done:
                continue
            row = run_one(options, strategy, seed)
            with RESULTS.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(
                f"{strategy:15s} seed {seed}: accuracy {row['accuracy']:.4f}, mean strength {row['mean_strength']:.3f}, {row['minutes']:.1f} min",
                flush=True,
            )


def table(options: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    groups = defaultdict(list)
    for row in rows:
        groups[key(row)[:-2], row["strategy"]].append(row)
    for comparison in sorted({setting for setting, _ in groups}, key=str):
        model, per_class, epochs, overrides, lr, window = comparison
        print(
            f"\n#### {model} ({overrides}), {per_class} images per class, {epochs} epochs, lr {lr}, window {window}\n"
        )
        print("| strategy | mean strength | test accuracy (%) | seeds |")
        print("|---|---|---|---|")
        for strategy in STRATEGIES:
            runs = groups.get((comparison, strategy), [])
            if not runs:
                continue
            accuracies = [100 * r["accuracy"] for r in runs]
            spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
            strength = statistics.mean(r["mean_strength"] for r in runs)
            print(f"| {strategy} | {strength:.2f} | {statistics.mean(accuracies):.2f} ± {spread:.2f} | {len(runs)} |")
    if rows:
        print(
            f"\nCommand of the last run (the others differ in the strategy flags and --seed): `{rows[-1]['command']}`"
        )
        print(
            f"Machine: {rows[-1]['machine']}; dates: {min(r['date'] for r in rows)} to {max(r['date'] for r in rows)}."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--model", choices=list(MODELS), default="resnet")
    runner.add_argument("--config-overrides", default=None)
    runner.add_argument("--examples-per-class", type=int, default=500)
    runner.add_argument("--epochs", type=int, default=80)
    runner.add_argument("--learning-rate", type=float, default=2e-3)
    runner.add_argument("--batch-size", type=int, default=128)
    runner.add_argument("--window", type=int, default=10)
    runner.add_argument("--workers", type=int, default=1)
    runner.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    runner.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), default=list(STRATEGIES))
    commands.add_parser("table")
    options = parser.parse_args()
    run(options) if options.command == "run" else table(options)


if __name__ == "__main__":
    main()
