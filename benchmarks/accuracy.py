"""Does SADA pay? Test accuracy of every strategy on low-data CIFAR-10, through `sada-hf train`.

    # run (resumable: finished runs in the results file are skipped), then print the table
    python benchmarks/accuracy.py run --model resnet --examples-per-class 500 --epochs 80 --seeds 0 1 2
    python benchmarks/accuracy.py table

    # the fine-tune regime: a ViT pretrained on the six animal classes (benchmarks/pretrain.py, made once
    # and cached) fine-tuned on the four vehicle classes through --model_name_or_path
    python benchmarks/accuracy.py run --model vit_finetune --examples-per-class 250 --epochs 10 \
        --learning-rate 3e-4 --warmup 0.1 --batch-size 32 --window 5 --probe-every 0.25 --seeds 0 1 2 3 4

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
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sada_hf.arguments import DEMO_DEFAULTS

import pretrain
from provenance import machine, provenance

RESULTS = Path(__file__).parent / "results" / "accuracy.jsonl"  # --results names another file

STRATEGIES = {
    "none": ["--strategy", "none"],
    "trivialaugment": ["--strategy", "trivialaugment"],
    "random": ["--strategy", "random"],
    "entropy": ["--strategy", "entropy"],
    "sada_minmax": ["--strategy", "sada", "--normalization", "minmax"],
    "sada_rank": ["--strategy", "sada", "--normalization", "rank"],
    "sada_inverted": ["--strategy", "sada", "--normalization", "rank", "--direction", "unstable_strong"],
    "sada_shuffled": ["--strategy", "sada_shuffled", "--normalization", "rank"],
    # The same equations fed by a clean-view probe at each epoch end instead of the training step.
    "probe_rank": ["--strategy", "sada", "--influence", "probe", "--normalization", "rank"],
    "probe_shuffled": ["--strategy", "sada_shuffled", "--influence", "probe", "--normalization", "rank"],
    "probe_inverted": [
        "--strategy",
        "sada",
        "--influence",
        "probe",
        "--normalization",
        "rank",
        "--direction",
        "unstable_strong",
    ],  # fmt: skip
    "probe_minmax": ["--strategy", "sada", "--influence", "probe", "--normalization", "minmax"],
    # Strengths from the training steps' margins (AUM), free: easy examples strong, hard ones strong, control.
    "margin_rank": ["--strategy", "margin", "--normalization", "rank"],
    "margin_inverted": ["--strategy", "margin", "--normalization", "rank", "--direction", "unstable_strong"],
    "margin_shuffled": ["--strategy", "margin_shuffled", "--normalization", "rank"],
    # Regime check of the fine-tune setting: the same ViT trained from scratch on the same images.
    "scratch_trivialaugment": ["--strategy", "trivialaugment"],
}
# Strategies whose model is not the setting's: the fine-tune ViT's architecture from a config, at the
# pretraining's learning rate (a from-scratch learning rate, not the fine-tune one).
FROM_SCRATCH = {"scratch_trivialaugment": ["--learning_rate", "1e-3"]}
# Paired comparisons reported per seed: (strategy, baseline).
PAIRS = (
    ("sada_rank", "trivialaugment"),  # the paper's method, against the baseline and its own shuffled control
    ("sada_rank", "sada_shuffled"),
    ("probe_rank", "trivialaugment"),
    ("probe_rank", "probe_shuffled"),
    ("probe_rank", "sada_rank"),
    ("probe_inverted", "probe_shuffled"),
    ("probe_inverted", "trivialaugment"),
    ("probe_inverted", "sada_rank"),
    ("probe_minmax", "trivialaugment"),
    ("margin_inverted", "trivialaugment"),
    ("margin_inverted", "margin_shuffled"),
    ("margin_inverted", "probe_inverted"),
    ("margin_rank", "trivialaugment"),
    ("margin_rank", "margin_shuffled"),
    ("margin_rank", "none"),  # where augmentation itself hurts (fine-tune), the bar that matters to a user
    # the fine-tune regime checks: augmentation matters, pretraining matters
    ("trivialaugment", "none"),
    ("trivialaugment", "scratch_trivialaugment"),
)

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
    # A ViT pretrained on the animal classes (benchmarks/pretrain.py), a new head for the vehicles.
    "vit_finetune": ["--model_name_or_path", "<pretrained>", "--ignore_mismatched_sizes", "true"],
}
DEFAULT_CLASSES = {"vit_finetune": list(pretrain.VEHICLES)}
# Options whose default leaves a setting as it was before the option existed (older rows lack them).
_OPTIONAL_SETTINGS = {"classes": None, "warmup": 0.05, "batch_size": 128, "probe_every": 1.0, "logit_adjustment": 0.0}


def model_flags(options: argparse.Namespace) -> list[str]:
    """The model flags of the setting; the fine-tune model is pretrained first if it is not cached."""
    if options.model == "vit_finetune":
        return ["--model_name_or_path", str(pretrain.pretrained()), "--ignore_mismatched_sizes", "true"]
    return MODELS[options.model]


def setting(options: argparse.Namespace) -> dict:
    """What defines a comparison: everything but the strategy and the seed."""
    if options.model == "digits":
        return {
            "model": "digits", "examples_per_class": "all", "epochs": DEMO_DEFAULTS["num_train_epochs"],
            "config_overrides": "default ViT", "learning_rate": DEMO_DEFAULTS["learning_rate"], "window": 10,
        }  # fmt: skip
    if options.model == "vit_finetune":
        overrides = "pretrained " + pretrain.folder().name
    else:
        flags = MODELS[options.model]
        overrides = options.config_overrides or flags[flags.index("--config_overrides") + 1]
    optional = {name: getattr(options, name) for name, default in _OPTIONAL_SETTINGS.items()}
    return {
        "model": options.model,
        "examples_per_class": options.examples_per_class,
        "imbalance_ratio": options.imbalance_ratio,
        **({"label_noise": options.label_noise} if options.label_noise else {}),
        "epochs": options.epochs,
        "config_overrides": overrides,
        # The pretrained model's weights (rows before 2026-12-04 lack it): the recipe made again on other
        # package versions is another model, and rows of two models are never paired.
        **({"weights": pretrain.weights_digest()} if options.model == "vit_finetune" else {}),
        "learning_rate": options.learning_rate,
        "window": options.window,
        **{name: value for name, value in optional.items() if value != _OPTIONAL_SETTINGS[name]},
    }


def recipe(options: argparse.Namespace) -> list[str]:
    """The training settings every strategy shares."""
    quiet = ["--eval_strategy", "no", "--save_strategy", "no", "--disable_tqdm", "true", "--report_to", "none"]
    if options.model == "digits":  # the embedded default run of `sada-hf train`, as it is
        return quiet
    return [
        "--builtin_dataset", "cifar10",
        "--examples_per_class", str(options.examples_per_class),
        *(["--classes", *options.classes] if options.classes else []),
        *(["--imbalance_ratio", str(options.imbalance_ratio)] if options.imbalance_ratio else []),
        *(["--label_noise", options.label_noise] if options.label_noise else []),
        *(["--logit_adjustment", str(options.logit_adjustment)] if options.logit_adjustment else []),
        "--num_train_epochs", str(options.epochs),
        "--learning_rate", str(options.learning_rate),
        "--weight_decay", "0.05",
        "--warmup_steps", str(options.warmup),
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


def train_argv(options: argparse.Namespace, strategy: str, seed: int, output_dir: str) -> list[str]:
    """The `sada-hf train` arguments of one run: model, shared recipe, strategy flags, seed, output folder
    (later flags win: a from-scratch strategy's learning rate replaces the recipe's)."""
    model = pretrain.ARCHITECTURE if strategy in FROM_SCRATCH else model_flags(options)
    probe = ["--probe_every", str(options.probe_every)] if "probe" in STRATEGIES[strategy] else []
    argv = model + recipe(options) + STRATEGIES[strategy] + probe + FROM_SCRATCH.get(strategy, []) + [
        "--seed", str(seed), "--output_dir", output_dir,
    ]  # fmt: skip
    if options.config_overrides and options.model != "digits":
        argv[argv.index("--config_overrides") + 1] = options.config_overrides
    return argv


def training_split(argv: list[str]):
    """The training split `sada-hf train argv` trains on (same data arguments and seed: row i is index i)."""
    from sada_hf.arguments import parse_train_arguments
    from sada_hf.data import load_splits

    model_args, data_args, sada_config, training_args, _ = parse_train_arguments(argv)
    return load_splits(data_args, seed=training_args.seed)["train"]


def run_one(options: argparse.Namespace, strategy: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as output_dir:
        argv = train_argv(options, strategy, seed, output_dir)
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
        minutes = (time.time() - start) / 60  # training and evaluation, not the diagnostics below
        diagnostics = strength_diagnostics(output_dir, argv) if options.model != "digits" else {}
        return {
            **setting(options),
            "strategy": strategy,
            "seed": seed,
            "accuracy": evaluation["eval_accuracy"],
            **{
                group: evaluation[f"eval_{group}_shot_accuracy"]
                for group in ("many", "medium", "few")
                if f"eval_{group}_shot_accuracy" in evaluation
            },
            # Expected strength of a visit in epochs 2..E (published at the ends of epochs 1..E-1).
            "mean_strength": statistics.mean(e["sada/expected_strength"] for e in sada[:-1]),
            "minutes": minutes,
            **diagnostics,
            "command": pretrain.typed(argv[:-2]),
            **provenance(),
        }


def strength_diagnostics(output_dir: str, argv: list[str]) -> dict:
    """Does the final assignment go easy on hard examples? The final model's clean-view loss on its own
    training images (through its saved image processor) against their final strengths (from the saved
    per-example summary)."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from sada_hf import EvalTransform

    strengths = pq.read_table(Path(output_dir, "sada_examples.parquet")).column("strength").to_numpy()
    train = training_split(argv)  # the labels it was trained on, flipped ones included
    model = AutoModelForImageClassification.from_pretrained(output_dir).eval()
    transform = EvalTransform(AutoImageProcessor.from_pretrained(output_dir))
    labels = torch.tensor(train["label"])
    with torch.no_grad():
        logits = torch.cat(
            [
                model(pixel_values=transform(train[i : i + 500])["pixel_values"]).logits
                for i in range(0, len(train), 500)
            ]
        )
    losses = torch.nn.functional.cross_entropy(logits.double(), labels, reduction="none").numpy()
    wrong = (logits.argmax(1) != labels).numpy()
    defined = np.isfinite(strengths)
    if defined.sum() < 3:
        return {}
    ranks = [np.argsort(np.argsort(x[defined])) for x in (strengths, losses)]
    return {
        "spearman_strength_loss": float(np.corrcoef(*ranks)[0, 1]),
        "strength_wrong": float(np.nanmean(strengths[wrong])) if wrong.any() else float("nan"),
        "strength_right": float(np.nanmean(strengths[~wrong])),
    }


# The settings that make runs comparable: runs that differ only in strategy and seed form one comparison.
COMPARISON_FIELDS = (
    "model",
    "examples_per_class",
    "imbalance_ratio",
    "label_noise",
    "epochs",
    "config_overrides",
    "weights",
    "learning_rate",
    "window",
    *_OPTIONAL_SETTINGS,
)


def key(row: dict) -> tuple:
    values = (row.get(name) for name in (*COMPARISON_FIELDS, "strategy", "seed"))
    return tuple(tuple(value) if isinstance(value, list) else value for value in values)


def run(options: argparse.Namespace) -> None:
    results = options.results
    results.parent.mkdir(parents=True, exist_ok=True)
    done = {key(json.loads(line)) for line in results.read_text().splitlines()} if results.exists() else set()
    for seed in options.seeds:  # seed-major: partial results already cover every strategy
        for strategy in options.strategies:
            probe = {**setting(options), "strategy": strategy, "seed": seed}
            if key(probe) in done:
                continue
            row = run_one(options, strategy, seed)
            with results.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(
                f"{strategy:15s} seed {seed}: accuracy {row['accuracy']:.4f}, mean strength {row['mean_strength']:.3f}, {row['minutes']:.1f} min",
                flush=True,
            )


def grouped(results: Path) -> dict[tuple, list[dict]]:
    """The runs of a results file by (comparison, strategy); a comparison is every setting but strategy and seed."""
    groups = defaultdict(list)
    for line in results.read_text().splitlines():
        row = json.loads(line)
        groups[key(row)[:-2], row["strategy"]].append(row)
    return groups


def find_comparison(groups: dict, wanted: dict) -> tuple:
    """The one comparison whose setting fields have the `wanted` values (the docs' table markers name it so)."""
    found = {c for c, _ in groups if all(dict(zip(COMPARISON_FIELDS, c)).get(k) == v for k, v in wanted.items())}
    if len(found) != 1:
        raise ValueError(
            f"{len(found)} comparisons in the results have {wanted}; name one by more of {COMPARISON_FIELDS}"
        )
    return found.pop()


def comparison_markdown(groups: dict, comparison: tuple) -> str:
    """One comparison's tables: every strategy's accuracy and diagnostics, then the paired differences (and, with
    logit adjustment, what the adjustment alone changed)."""
    lines = [
        "| strategy | mean strength | test accuracy (%) | seeds | minutes per run (median) | Spearman(strength, loss) "
        "| strength: wrong / right |",
        "|---|---|---|---|---|---|---|",
    ]
    for strategy in STRATEGIES:
        runs = groups.get((comparison, strategy), [])
        if not runs:
            continue
        accuracies = [100 * r["accuracy"] for r in runs]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        strength = statistics.mean(r["mean_strength"] for r in runs)
        minutes = statistics.median(r["minutes"] for r in runs)
        with_diagnostics = [r for r in runs if "spearman_strength_loss" in r]
        if with_diagnostics:
            rho = statistics.mean(r["spearman_strength_loss"] for r in with_diagnostics)
            wrong = statistics.mean(r["strength_wrong"] for r in with_diagnostics)
            right = statistics.mean(r["strength_right"] for r in with_diagnostics)
            diagnostics = f"{rho:+.2f} | {wrong:.2f} / {right:.2f}"
        else:
            diagnostics = "- | -"
        shots = ""
        if all("few" in r for r in runs):
            shots = (
                " (many / medium / few: "
                + " / ".join(f"{100 * statistics.mean(r[g] for r in runs):.1f}" for g in ("many", "medium", "few"))
                + ")"
            )
        lines.append(
            f"| {strategy} | {strength:.2f} | {statistics.mean(accuracies):.2f} ± {spread:.2f}{shots} | {len(runs)} "
            f"| {minutes:.1f} | {diagnostics} |"
        )
    paired = []
    for strategy, baseline in PAIRS:
        differences = paired_differences(groups, comparison, strategy, baseline)
        if differences:
            per_seed = " / ".join(f"{d:+.2f}" for d in differences)
            mean, count = _summary(differences).split(" (")
            paired.append(f"| {strategy} - {baseline} | {mean} | {per_seed} | {count[:-1]} |")
    if paired:
        lines += ["", "| paired difference (points) | mean ± std | per seed | seeds positive |", "|---|---|---|---|"]
        lines += paired
    adjustment = adjustment_markdown(groups, comparison)
    if adjustment:
        lines += ["", adjustment]
    return "\n".join(lines)


def adjustment_markdown(groups: dict, comparison: tuple) -> str:
    """Logit adjustment alone: for each strategy run both in `comparison` (a logit-adjusted one) and in the same
    setting without the adjustment, the paired test-accuracy differences (adjusted - plain) and the few-shot
    accuracy of each (mean, and its lowest seed: rule 9 asks for the tail on every seed); empty when `comparison`
    is not logit-adjusted or no strategy ran in both."""
    position = COMPARISON_FIELDS.index("logit_adjustment")
    tau = comparison[position]
    if tau is None:
        return ""
    plain = (*comparison[:position], None, *comparison[position + 1 :])  # rows record only a non-default tau
    lines = []
    for strategy in STRATEGIES:
        adjusted = {r["seed"]: r for r in groups.get((comparison, strategy), [])}
        before = {r["seed"]: r for r in groups.get((plain, strategy), [])}
        seeds = sorted(set(adjusted) & set(before))
        if not seeds:
            continue
        differences = [100 * (adjusted[s]["accuracy"] - before[s]["accuracy"]) for s in seeds]
        mean, count = _summary(differences).split(" (")
        few = [
            f"{100 * statistics.mean(runs[s]['few'] for s in seeds):.1f} "
            f"(lowest {100 * min(runs[s]['few'] for s in seeds):.1f})"
            for runs in (before, adjusted)
        ]
        lines.append(
            f"| {strategy} | {mean} | {' / '.join(f'{d:+.2f}' for d in differences)} | {count[:-1]} "
            f"| {few[0]} -> {few[1]} |"
        )
    columns = (
        f"| logit adjustment (tau {tau:g}) - plain loss, paired (points) | mean ± std | per seed | seeds positive "
    )
    few = "| few-shot accuracy (%), plain -> adjusted |"
    return "\n".join([columns + few, "|---|---|---|---|---|", *lines]) if lines else ""


def table(options: argparse.Namespace) -> None:
    groups = grouped(options.results)
    for comparison in sorted({setting for setting, _ in groups}, key=str):
        s = dict(zip(COMPARISON_FIELDS, comparison))
        data = f"{s['examples_per_class']} images per class"
        data += f", long-tailed (imbalance ratio {s['imbalance_ratio']:g})" if s["imbalance_ratio"] else ""
        data += f" of {', '.join(s['classes'])}" if s["classes"] else ""
        data += f", label noise {s['label_noise']}" if s["label_noise"] else ""
        recipe_notes = f"{s['epochs']} epochs, lr {s['learning_rate']}, window {s['window']}"
        recipe_notes += "".join(
            f", {name} {s[field]}"
            for name, field in (("warm-up", "warmup"), ("batch", "batch_size"), ("probe every", "probe_every"),
                                ("logit adjustment", "logit_adjustment"))
            if s[field] is not None
        )  # fmt: skip
        model, overrides = s["model"], s["config_overrides"] + (f", weights {s['weights']}" if s["weights"] else "")
        print(f"\n#### {model} ({overrides}), {data}, {recipe_notes}\n")
        print(comparison_markdown(groups, comparison))
    rows = [row for runs in groups.values() for row in runs]
    if rows:
        last = json.loads(options.results.read_text().splitlines()[-1])
        print(f"\nCommand of the last run (the others differ in the strategy flags and --seed): `{last['command']}`")
        print(f"Machine: {machine(last)}; dates: {min(r['date'] for r in rows)} to {max(r['date'] for r in rows)}.")


def paired_differences(groups: dict, comparison: tuple, strategy: str, baseline: str) -> list[float]:
    """Test-accuracy differences (points) between two strategies, one per seed both ran, in seed order."""
    ours = {r["seed"]: 100 * r["accuracy"] for r in groups.get((comparison, strategy), [])}
    theirs = {r["seed"]: 100 * r["accuracy"] for r in groups.get((comparison, baseline), [])}
    return [ours[seed] - theirs[seed] for seed in sorted(set(ours) & set(theirs))]


def _summary(differences: list[float]) -> str:
    spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
    positive = sum(d > 0 for d in differences)
    return f"{statistics.mean(differences):+.2f} ± {spread:.2f} ({positive} of {len(differences)})"


# The headline table: one column per regime (the setting fields that pick it out), one row per comparison.
HEADLINE_REGIMES = {
    "balanced, from scratch": dict(model="resnet", examples_per_class=500, imbalance_ratio=None, epochs=80),
    "long-tailed, from scratch": dict(
        model="resnet", examples_per_class=1000, imbalance_ratio=100.0, epochs=80, logit_adjustment=None
    ),
    "long-tailed, from scratch, logit-adjusted loss": dict(
        model="resnet", examples_per_class=1000, imbalance_ratio=100.0, epochs=80, logit_adjustment=1.0
    ),
    "balanced, fine-tune": dict(model="vit_finetune", examples_per_class=250, imbalance_ratio=None),
    # Rule 9: the long-tailed fine-tune that learns the tail (logit adjustment, the model of 2026-12-04).
    "long-tailed, fine-tune, logit-adjusted loss": dict(
        model="vit_finetune",
        examples_per_class=500,
        imbalance_ratio=50.0,
        weights="b71e3f505d6e",
        logit_adjustment=1.0,
    ),
}
HEADLINE_ROWS = (
    ("sada_rank", "trivialaugment", "the paper's method (default) - TrivialAugment"),
    ("margin_inverted", "trivialaugment", "margin, hard examples strong - TrivialAugment"),
    ("margin_rank", "trivialaugment", "margin, easy examples strong - TrivialAugment"),
    ("probe_inverted", "trivialaugment", "probe, hard examples strong - TrivialAugment"),
    ("trivialaugment", "none", "TrivialAugment - no SADA op"),
    ("trivialaugment", "scratch_trivialaugment", "pretrained - from scratch (both TrivialAugment)"),
)


def headline_markdown(groups: dict) -> str:
    """The README's table: the key paired differences in every regime (mean ± std, seeds positive)."""
    columns = {}
    for title, wanted in HEADLINE_REGIMES.items():
        matching = [c for c, _ in groups if all(dict(zip(COMPARISON_FIELDS, c))[k] == v for k, v in wanted.items())]
        matching = [c for c in matching if dict(zip(COMPARISON_FIELDS, c))["label_noise"] is None]
        columns[title] = max(matching, key=lambda c: len(groups.get((c, "trivialaugment"), [])), default=None)
    lines = [
        "| test accuracy, paired by seed (points) | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for strategy, baseline, label in HEADLINE_ROWS:
        cells = []
        for comparison in columns.values():
            differences = paired_differences(groups, comparison, strategy, baseline) if comparison else []
            cells.append(_summary(differences) if differences else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(options: argparse.Namespace) -> None:
    print(headline_markdown(grouped(options.results)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--model", choices=list(MODELS), default="resnet")
    runner.add_argument("--config-overrides", default=None)
    runner.add_argument("--examples-per-class", type=int, default=500)
    runner.add_argument("--imbalance-ratio", type=float, default=None, help="long-tailed (CIFAR-10-LT): 100")
    runner.add_argument("--label-noise", default=None, help="flipped training labels, e.g. symmetric:0.2")
    runner.add_argument("--classes", nargs="+", default=None, help="CIFAR-10 classes (vit_finetune: the vehicles)")
    runner.add_argument("--warmup", type=float, default=0.05, help="warm-up, a fraction of the training steps")
    runner.add_argument("--probe-every", type=float, default=1.0, help="--probe_every of the probe strategies")
    runner.add_argument("--logit-adjustment", type=float, default=0.0, help="--logit_adjustment TAU (long-tailed)")
    runner.add_argument("--epochs", type=int, default=80)
    runner.add_argument("--learning-rate", type=float, default=2e-3)
    runner.add_argument("--batch-size", type=int, default=128)
    runner.add_argument("--window", type=int, default=10)
    runner.add_argument("--workers", type=int, default=1)
    runner.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    runner.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), default=list(STRATEGIES))
    commands.add_parser("table")
    commands.add_parser("headline", help="the README's table: key paired differences in every regime")
    for command in commands.choices.values():
        command.add_argument("--results", type=Path, default=RESULTS, help="the results file (JSON lines)")
    options = parser.parse_args()
    if options.command == "run":
        options.classes = options.classes or DEFAULT_CLASSES.get(options.model)
        run(options)
    else:
        {"table": table, "headline": headline}[options.command](options)


if __name__ == "__main__":
    main()
