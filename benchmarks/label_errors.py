"""Label errors found from one training run: SADA's training-step and probe AUM against the `aum` package
and cleanlab.

    pip install -e ".[benchmarks]"        # aum and cleanlab: benchmark dependencies only
    python benchmarks/label_errors.py run --label-noise symmetric:0.2 --seeds 0 1 2
    python benchmarks/label_errors.py table

CIFAR-10 (500 images per class by default) with a seeded share of its training labels flipped
(`sada-hf train --label_noise`, which keeps the true labels in `clean_label`), the accuracy benchmark's
model and recipe. Per seed, four finders rank the training examples from most to least suspicious:
- `sada-train-step`: one default SADA run (the paper's method, no probe): the training steps' AUM that
  every run records for free (`sada-hf label-issues`);
- `sada-probe-run`: one probe SADA run (`probe_rank`): every ranking of `sada_hf.label_issues.RANKINGS`
  (the training steps' AUM, the probes' clean-view AUM, both together);
- `aum-package`: the `aum` package's AUMCalculator fed the probe run's training-step logits (AUM as its
  paper computes it), from the same single run;
- `cleanlab-5-fold`: cleanlab's label-quality score and `find_label_issues` from 5-fold cross-validated
  probabilities (5 more trainings on 4/5 of the data each, TrivialAugment, the same recipe).
Scores: AUROC of the ranking for "flipped", precision at k = the true number of flips, and the flagged
count, precision, recall and F1 of each cut-off (ours: every rule of `sada_hf.label_issues.CUTOFFS`), and for
our runs how often the suggested label (and the last step's guess) is the true label, on the flipped
examples, the suspects and the flipped suspects.
Acting on them (rule 10 of docs/results.md; `--finders` from `ACTING`, not run by default), every training
with TrivialAugment: the noisy run that finds the suspects, the clean ceiling, an oracle that drops exactly
the flipped, our suspects dropped or relabelled and one more training (`sada-hf label-issues --export`,
`sada-hf train --decisions`), our in-run option from half-way, and cleanlab's prune-and-retrain; the test
accuracy of each, the share of the noise's cost it recovers and the wrong labels it leaves.
Minutes are wall-clock training time per finder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sada_hf.label_issues import CUTOFF  # noqa: E402

from accuracy import MODELS, train_argv, training_split  # noqa: E402
from pretrain import typed  # noqa: E402
from provenance import machine, provenance, provenance_differences  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "label_errors.jsonl"
FINDERS = {  # id: the README table's title
    "sada-train-step": "ours, default run",
    "sada-probe-run": "ours, probe run",
    "aum-package": "aum package",
    "cleanlab-5-fold": "cleanlab, 5-fold",
}
TRAINED_FINDERS = tuple(f for f in FINDERS if f != "aum-package")  # aum-package reads the probe run's logits


def scores(flipped: np.ndarray, suspicion: np.ndarray) -> dict:
    """AUROC of `suspicion` (higher: more likely flipped) and precision at k = number flipped."""
    from sklearn.metrics import roc_auc_score

    k = int(flipped.sum())
    top = np.argsort(-suspicion, kind="stable")[:k]
    return {"auroc": float(roc_auc_score(flipped, suspicion)), "precision_at_k": float(flipped[top].mean()), "k": k}


def cutoff_scores(flipped: np.ndarray, flagged: np.ndarray) -> dict:
    """How a boolean cut-off does: flagged count, precision, recall and F1."""
    precision = float(flipped[flagged].mean()) if flagged.any() else 0.0
    recall = float(flagged[flipped].mean())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"flagged": int(flagged.sum()), "precision": precision, "recall": recall, "f1": f1}


def our_finder(output_dir: str, split, rankings: list[str]) -> dict:
    """The rankings and every cut-off of a SADA run's `data_map`, against the flipped labels of its training
    `split`, and how often its label suggestions are the true label."""
    from sada_hf import data_map
    from sada_hf.label_issues import CUTOFF, CUTOFFS, RANKINGS

    stats = data_map(output_dir)
    clean = np.asarray(split["clean_label"])
    flipped = np.asarray(split["label"]) != clean
    return {
        "rankings": {name: scores(flipped, -RANKINGS[name](stats)) for name in rankings},
        "cutoffs": {name: cutoff_scores(flipped, rule(stats)) for name, rule in CUTOFFS.items()},
        "suggestions": suggestion_scores(stats, clean, flipped, CUTOFFS[CUTOFF](stats)),
    }


# The label each example's training steps suggest (label_issues' suggested_label), and the last step's guess.
SUGGESTIONS = {"suggested": "suggested_label (weighted vote)", "predicted": "predicted_label (last step)"}


def suggestion_scores(stats: dict, clean: np.ndarray, flipped: np.ndarray, suspects: np.ndarray) -> dict:
    """Per suggestion (`SUGGESTIONS`), the share that is the true label: on the flipped examples, on the
    suspects (the cut-off's), and on the suspects that were flipped (what relabelling them would fix)."""
    groups = {"on_flipped": flipped, "on_suspects": suspects, "on_flipped_suspects": flipped & suspects}
    return {
        name: {group: float((stats[name][rows] == clean[rows]).mean()) if rows.any() else None
               for group, rows in groups.items()}
        for name in SUGGESTIONS
        if name in stats
    }  # fmt: skip


def default_run(options: argparse.Namespace, seed: int, wanted: list[str]) -> list[dict]:
    """`sada-train-step`: the training steps' AUM of one default run (no probe)."""
    from sada_hf.cli import train

    with tempfile.TemporaryDirectory() as output_dir:
        argv = train_argv(options, "sada_rank", seed, output_dir)
        start = time.time()
        metrics = train(argv)
        minutes = (time.time() - start) / 60
        found = our_finder(output_dir, training_split(argv), ["aum"])
    command = typed(argv[:-2])
    row = {"finder": "sada-train-step", **found, "minutes": minutes, "trainings": 1, "command": command}
    return [{**row, "accuracy": metrics["eval_accuracy"]}]


def one_probe_run(options: argparse.Namespace, seed: int, wanted: list[str]) -> list[dict]:
    """`sada-probe-run` and `aum-package` from one probe SADA run."""
    from aum import AUMCalculator

    from sada_hf import SADATrainer
    from sada_hf.cli import train
    from sada_hf.label_issues import RANKINGS

    with tempfile.TemporaryDirectory() as output_dir:
        argv = train_argv(options, "probe_rank", seed, output_dir)
        calculator = AUMCalculator(output_dir, compressed=True)
        compute_loss = SADATrainer.compute_loss

        def recording(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            indices, labels = inputs.get(self._index_column), inputs.get("labels")
            loss, outputs = compute_loss(self, model, inputs, True, num_items_in_batch)
            if model.training:
                logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
                calculator.update(logits.detach().float().cpu(), labels.cpu(), indices.tolist())
            return (loss, outputs) if return_outputs else loss

        SADATrainer.compute_loss = recording
        start = time.time()
        try:
            metrics = train(argv)
        finally:
            SADATrainer.compute_loss = compute_loss
        minutes = (time.time() - start) / 60
        calculator.finalize(output_dir)
        split = training_split(argv)
        flipped = np.asarray(split["label"]) != np.asarray(split["clean_label"])
        found = our_finder(output_dir, split, list(RANKINGS))
        package = np.full(len(flipped), np.nan)
        with open(Path(output_dir, "aum_values.csv")) as handle:
            next(handle)
            for line in handle:
                index, value = line.strip().split(",")
                package[int(index)] = float(value)
        if np.isnan(package).any():
            raise RuntimeError(f"The aum package has no AUM for {int(np.isnan(package).sum())} training examples.")
    command = typed(argv[:-2])
    common = {"minutes": minutes, "trainings": 1}
    return [
        {"finder": "sada-probe-run", **found, **common, "accuracy": metrics["eval_accuracy"], "command": command},
        {
            "finder": "aum-package",
            "rankings": {"aum": scores(flipped, -package)},
            "cutoffs": {"aum_below_0": cutoff_scores(flipped, package < 0)},
            **common,
            "command": command + "  # + aum.AUMCalculator on the training-step logits",
        },
    ]


def cleanlab_run(options: argparse.Namespace, seed: int, wanted: list[str], folds: int = 5) -> list[dict]:
    """`cleanlab-5-fold`: out-of-fold probabilities from `folds` trainings with TrivialAugment; and
    `cleanlab-prune`: its `find_label_issues` dropped, then one more training (cleanlab's prune-and-retrain)."""
    import torch
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold
    from transformers import set_seed

    from sada_hf import SADATrainer
    from sada_hf.arguments import parse_train_arguments
    from sada_hf.data import label_names
    from sada_hf.job import build_transforms
    from sada_hf.modeling import build_model_and_processor

    with tempfile.TemporaryDirectory() as output_dir:
        argv = train_argv(options, "trivialaugment", seed, output_dir)
        model_args, data_args, sada_config, training_args, _ = parse_train_arguments(argv)
        split = training_split(argv)
        labels = np.asarray(split["label"])
        names = label_names(split, data_args.label_column_name)
        probabilities = np.zeros((len(labels), len(names)))
        start = time.time()
        for fit, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels):
            set_seed(seed)
            model, processor = build_model_and_processor(model_args, names)
            train_transform, eval_transform = build_transforms(data_args, processor, sada_config)
            trainer = SADATrainer(
                model=model,
                args=training_args,
                train_dataset=split.select(fit).with_transform(train_transform),
                sada_config=sada_config,
            )
            trainer.train()
            logits = trainer.predict(split.select(held_out).with_transform(eval_transform)).predictions
            probabilities[held_out] = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        minutes = (time.time() - start) / 60
    flipped = labels != np.asarray(split["clean_label"])
    quality = get_label_quality_scores(labels, probabilities)
    flagged = find_label_issues(labels, probabilities)
    command = typed(argv[:-2]) + f"  # on each of {folds} stratified folds' 4/5"
    rows = [
        {
            "finder": "cleanlab-5-fold",
            "rankings": {"label_quality": scores(flipped, -quality)},
            "cutoffs": {"find_label_issues": cutoff_scores(flipped, flagged)},
            "minutes": minutes,
            "trainings": folds,
            "command": command,
        }
    ]
    if "cleanlab-prune" in wanted:
        decisions = drops(split, flagged)
        accuracy, retraining, again = retrain(options, seed, decisions)
        clean, wrong = noise_of(split)
        row = {"finder": "cleanlab-prune", "accuracy": accuracy, "acted": acted_on(decisions, clean, wrong)}
        command = f"{command}; then {again}  # FILE: find_label_issues, dropped"
        rows.append({**row, "minutes": minutes + retraining, "trainings": folds + 1, "command": command})
    return rows


# Acting on the suspects (rule 10): id -> the table's title. Every training uses TrivialAugment, the README's
# advice for noisy labels, so the noisy run is both the baseline and the run that finds the suspects.
ACTING = {
    "noisy": "noisy labels",
    "retrain-drop": "drop, train again",
    "retrain-relabel": "relabel, train again",
    "retrain-drop-never-right": "drop never_right, train again",
    "retrain-relabel-never-right": "relabel never_right, train again",
    "in-run-drop": "drop in-run",
    "in-run-relabel": "relabel in-run",
    "cleanlab-prune": "cleanlab prune, train again",
    "oracle-drop": "oracle drop",
    "clean": "clean labels",
}
ACTING_STRATEGY = "trivialaugment"
IN_RUN = {"in-run-drop": "drop", "in-run-relabel": "relabel"}
# Training again on the noisy run's suspects: finder -> (action, cut-off) (rule 10: the default cut-off; rule 11:
# never_right's fewer, surer suspects).
RETRAINS = {
    "retrain-drop": ("drop", CUTOFF),
    "retrain-relabel": ("relabel", CUTOFF),
    "retrain-drop-never-right": ("drop", "never_right"),
    "retrain-relabel-never-right": ("relabel", "never_right"),
}
IN_RUN_START = 0.5  # --label_issue_start: the share of the epochs after which the in-run option acts


def timed_train(argv: list[str]) -> tuple[float, float]:
    """Test accuracy and minutes of one `sada-hf train argv`."""
    from sada_hf.cli import train

    start = time.time()
    metrics = train(argv)
    return metrics["eval_accuracy"], (time.time() - start) / 60


def retrain(options: argparse.Namespace, seed: int, decisions: dict) -> tuple[float, float, str]:
    """Test accuracy, minutes and command of one training on the split cleaned by `decisions`."""
    from sada_hf.decisions import write_decisions

    with tempfile.TemporaryDirectory() as folder:
        path = write_decisions(Path(folder, "decisions.csv"), decisions)
        argv = train_argv(options, ACTING_STRATEGY, seed, str(Path(folder, "run")))
        accuracy, minutes = timed_train([*argv, "--decisions", str(path)])
    return accuracy, minutes, typed(argv[:-2]) + " --decisions FILE"


def drops(split, rows: np.ndarray) -> dict:
    """Decisions that drop the training split's `rows` (a mask over its positions)."""
    rows = np.flatnonzero(rows)
    return changes(np.asarray(split["row"])[rows], np.asarray(split["label"])[rows], np.full(len(rows), -1))


def changes(rows: np.ndarray, given: np.ndarray, trained: np.ndarray) -> dict:
    """Decisions (the columns of `sada_hf.decisions`) that train each of `rows` on `trained` instead of its
    `given` label; a negative `trained` drops the row."""
    return {
        "row": rows.tolist(),
        "given_label": given.tolist(),
        "action": ["drop" if t < 0 else "relabel" for t in trained],
        "label": [None if t < 0 else int(t) for t in trained],
    }


def noise_of(split) -> tuple[dict, int]:
    """The true label of each row of a noisy training split, and how many of its labels are wrong."""
    clean = dict(zip(split["row"], split["clean_label"]))
    return clean, int(np.sum(np.asarray(split["label"]) != np.asarray(split["clean_label"])))


def find_and_retrain(options: argparse.Namespace, seed: int, wanted: list[str]) -> list[dict]:
    """`noisy` and `RETRAINS`: one noisy run, its suspects (by each cut-off) exported as decisions (dropped, or
    relabelled to their suggested label), and one more training on each cleaned split."""
    from sada_hf import label_issues
    from sada_hf.decisions import suspects_to_decisions

    with tempfile.TemporaryDirectory() as first:
        argv = train_argv(options, ACTING_STRATEGY, seed, first)
        accuracy, finding = timed_train(argv)
        issues = {cutoff: label_issues(first, cutoff=cutoff) for cutoff in {c for _, c in RETRAINS.values()}}
        split = training_split(argv)
        found = our_finder(first, split, ["aum"])  # the ranking a TrivialAugment run gives, and its suggestions
    clean, flipped = noise_of(split)
    noisy = {"finder": "noisy", **found, "accuracy": accuracy, "minutes": finding, "trainings": 1}
    rows = [{**noisy, "command": typed(argv[:-2])}]
    for finder, (action, cutoff) in RETRAINS.items():
        if finder in wanted:
            decisions = suspects_to_decisions(issues[cutoff], action)
            accuracy, minutes, command = retrain(options, seed, decisions)
            rows.append(
                {
                    "finder": finder,
                    "accuracy": accuracy,
                    "acted": acted_on(decisions, clean, flipped),
                    "minutes": finding + minutes,
                    "trainings": 2,
                    "command": command
                    + f"  # FILE: sada-hf label-issues RUN --export FILE --action {action} --cutoff {cutoff}",
                }
            )
    return rows


def in_run(options: argparse.Namespace, seed: int, wanted: list[str]) -> list[dict]:
    """`in-run-drop` and `in-run-relabel`: one training each that acts on its suspects from `IN_RUN_START`."""
    import pyarrow.parquet as pq

    rows = []
    for finder, action in IN_RUN.items():
        if finder not in wanted:
            continue
        with tempfile.TemporaryDirectory() as output_dir:
            argv = train_argv(options, ACTING_STRATEGY, seed, output_dir)
            argv += ["--label_issue_action", action, "--label_issue_start", str(IN_RUN_START)]
            accuracy, minutes = timed_train(argv)
            summary = pq.read_table(
                Path(output_dir, "sada_examples.parquet"), columns=["row", "label", "training_label"]
            )
        clean, flipped = noise_of(training_split(argv))
        given, trained = summary["label"].to_numpy(), summary["training_label"].to_numpy()
        changed = trained != given
        decisions = changes(summary["row"].to_numpy()[changed], given[changed], trained[changed])
        command = typed(argv[: argv.index("--output_dir")] + argv[argv.index("--output_dir") + 2 :])
        row = {"finder": finder, "accuracy": accuracy, "acted": acted_on(decisions, clean, flipped)}
        rows.append({**row, "minutes": minutes, "trainings": 1, "command": command})
    return rows


def clean_run(options: argparse.Namespace, seed: int, wanted: list[str]) -> list[dict]:
    """`clean`: the same images with their true labels (the ceiling)."""
    options = argparse.Namespace(**{**vars(options), "label_noise": None})
    with tempfile.TemporaryDirectory() as output_dir:
        argv = train_argv(options, ACTING_STRATEGY, seed, output_dir)
        accuracy, minutes = timed_train(argv)
    return [{"finder": "clean", "accuracy": accuracy, "minutes": minutes, "trainings": 1, "command": typed(argv[:-2])}]


def oracle_run(options: argparse.Namespace, seed: int, wanted: list[str]) -> list[dict]:
    """`oracle-drop`: exactly the flipped examples dropped, then one training."""
    split = training_split(train_argv(options, ACTING_STRATEGY, seed, "unused"))
    clean, flipped = noise_of(split)
    decisions = drops(split, np.asarray(split["label"]) != np.asarray(split["clean_label"]))
    accuracy, minutes, command = retrain(options, seed, decisions)
    row = {"finder": "oracle-drop", "accuracy": accuracy, "acted": acted_on(decisions, clean, flipped)}
    return [{**row, "minutes": minutes, "trainings": 1, "command": command + "  # FILE: the flipped, dropped"}]


# The trainings that make each finder's rows: finders made by one job share its trainings.
JOBS = {
    ("sada-train-step",): default_run,
    ("sada-probe-run", "aum-package"): one_probe_run,
    ("noisy", *RETRAINS): find_and_retrain,
    ("clean",): clean_run,
    ("oracle-drop",): oracle_run,
    tuple(IN_RUN): in_run,
    ("cleanlab-5-fold", "cleanlab-prune"): cleanlab_run,
}


def acted_on(decisions: dict, clean: dict, flipped: int) -> dict:
    """What `decisions` did to the wrong labels: flipped and clean examples dropped, flipped examples relabelled
    to their true class and clean ones relabelled away from it, and the wrong labels before and after."""
    counts = dict.fromkeys(("dropped_flipped", "dropped_clean", "relabel_fixed", "relabel_broke"), 0)
    for row, given, action, label in zip(
        decisions["row"], decisions["given_label"], decisions["action"], decisions["label"]
    ):
        true = clean[row]
        if action == "drop":
            counts["dropped_flipped" if given != true else "dropped_clean"] += 1
        elif action == "relabel":
            counts["relabel_fixed"] += given != true and label == true
            counts["relabel_broke"] += given == true and label != true
    after = flipped - counts["dropped_flipped"] - counts["relabel_fixed"] + counts["relabel_broke"]
    return {**counts, "wrong_before": flipped, "wrong_after": after}


def key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ("model", "examples_per_class", "label_noise", "epochs", "finder", "seed"))


def run(options: argparse.Namespace) -> None:
    results = options.results
    results.parent.mkdir(parents=True, exist_ok=True)
    stored = {key(row): row for row in map(json.loads, results.read_text().splitlines())} if results.exists() else {}
    done = set(stored)
    common = {
        "model": options.model,
        "examples_per_class": options.examples_per_class,
        "label_noise": options.label_noise,
        "epochs": options.epochs,
    }
    for seed in options.seeds:
        for finders, job in JOBS.items():
            wanted = [
                f for f in finders if f in options.finders and key({**common, "finder": f, "seed": seed}) not in done
            ]
            if not wanted:
                continue
            for row in job(options, seed, wanted):
                row = {
                    **common,
                    **row,
                    "seed": seed,
                    **provenance(),
                }
                if key(row) in done:  # made on the way to a wanted one, and already in the results
                    before = stored.get(key(row), {}).get("accuracy")
                    if before is not None and "accuracy" in row:
                        again = (
                            "reproduced"
                            if before == row["accuracy"]
                            else f"differs from {100 * before:.2f}% ({provenance_differences(stored[key(row)], row)})"
                        )
                        print(f"{row['finder']:16s} seed {seed}: ran again, {100 * row['accuracy']:.2f}% {again}")
                    continue
                done.add(key(row))
                with results.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                found = (
                    f"AUROC up to {max(r['auroc'] for r in row['rankings'].values()):.3f}"
                    if "rankings" in row
                    else f"test accuracy {100 * row['accuracy']:.2f}%"
                )
                print(f"{row['finder']:16s} seed {seed}: {found}, {row['minutes']:.1f} min", flush=True)


CELL_FIELDS = ("model", "examples_per_class", "label_noise", "epochs")
# The cells of the README's table (the default model, images per class and epochs), a row each even before it ran.
HEADLINE_NOISE = ("symmetric:0.1", "symmetric:0.2", "symmetric:0.4", "asymmetric:0.2")
# Our finders and the ranking each uses; the packages' finders and their one ranking.
OURS = ("sada-train-step", "sada-probe-run")
THEIRS = {"aum-package": "aum", "cleanlab-5-fold": "label_quality"}


def grouped(results: Path) -> dict[tuple, list[dict]]:
    """The rows of a results file by cell (model, images per class, label noise, epochs)."""
    groups = defaultdict(list)
    for line in results.read_text().splitlines():
        row = json.loads(line)
        groups[key(row)[:4]].append(row)
    return groups


def find_cell(groups: dict, wanted: dict) -> tuple:
    """The one cell whose fields have the `wanted` values (the docs' table markers name it so)."""
    found = [c for c in groups if all(dict(zip(CELL_FIELDS, c))[k] == v for k, v in wanted.items())]
    if len(found) != 1:
        raise ValueError(f"{len(found)} cells in the results have {wanted}; name one by more of {CELL_FIELDS}")
    return found[0]


def used_ranking(finder: str) -> str:
    """The ranking a finder flags by: ours, the one `sada_hf.label_issues` uses with or without probes."""
    from sada_hf.label_issues import RANKING_WITH_PROBES, RANKING_WITHOUT_PROBES

    ours = {"sada-train-step": RANKING_WITHOUT_PROBES, "sada-probe-run": RANKING_WITH_PROBES}
    return ours[finder] if finder in ours else THEIRS[finder]


def cell_markdown(group: list[dict]) -> str:
    """One cell's tables: every finder's rankings and cut-offs, our AUROC paired with the packages'."""
    from sada_hf.label_issues import CUTOFF

    lines = [
        "| finder | ranking | AUROC | precision at k | seeds | trainings | minutes (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for finder in FINDERS:
        runs = [r for r in group if r["finder"] == finder]
        for ranking in runs[0]["rankings"] if runs else []:
            used = " (used)" if finder in OURS and used_ranking(finder) == ranking else ""
            values = [r["rankings"][ranking] for r in runs]
            lines.append(
                f"| {finder} | {ranking}{used} | {_mean_std(values, 'auroc')} "
                f"| {_mean_std(values, 'precision_at_k')} | {len(runs)} | {runs[0]['trainings']} "
                f"| {statistics.median(r['minutes'] for r in runs):.1f} |"
            )
    lines += ["", "| finder | cut-off | flagged | precision | recall | F1 |", "|---|---|---|---|---|---|"]
    for finder in FINDERS:
        runs = [r for r in group if r["finder"] == finder]
        for cutoff in runs[0]["cutoffs"] if runs else []:
            used = " (used)" if finder in OURS and cutoff == CUTOFF else ""
            values = [r["cutoffs"][cutoff] for r in runs]
            cells = " | ".join(
                f"{statistics.mean(v[name] for v in values):.2f}" for name in ("precision", "recall", "f1")
            )
            lines.append(
                f"| {finder} | {cutoff}{used} | {statistics.mean(v['flagged'] for v in values):.0f} | {cells} |"
            )
    paired = []
    for finder in OURS:
        for other in THEIRS:
            differences = paired_auroc(group, finder, other)
            if differences:
                per_seed = " / ".join(f"{d:+.3f}" for d in differences)
                paired.append(
                    f"| {finder} - {other} | {statistics.mean(differences):+.3f} | {per_seed} "
                    f"| {sum(d >= 0 for d in differences)} of {len(differences)} |"
                )
    if paired:
        lines += ["", "| AUROC, paired | mean | per seed | seeds at least as good |", "|---|---|---|---|", *paired]
    lines += suggestion_lines(group) + acting_lines(group)
    ranked = [r for r in group if "rankings" in r]
    accuracy = {f: [100 * r["accuracy"] for r in group if r["finder"] == f and "accuracy" in r] for f in OURS}
    if ranked:
        k = statistics.mean(r["rankings"][next(iter(r["rankings"]))]["k"] for r in ranked)
        lines.append(f"\nFlipped labels: {k:.0f} of {10 * group[0]['examples_per_class']}.")
    if any(accuracy.values()):
        lines.append(
            "Test accuracy of our runs: "
            + "; ".join(
                f"{f} {statistics.mean(a):.2f}% ({len(a)} seed{'s' * (len(a) > 1)})" for f, a in accuracy.items() if a
            )
            + "."
        )
    return "\n".join(lines)


def _table(columns: list[str], rows: list[str]) -> list[str]:
    """A Markdown table after a blank line (nothing without rows)."""
    return ["", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|", *rows] if rows else []


def suggestion_lines(group: list[dict]) -> list[str]:
    """How often each of our runs' suggestions is the true label, on the flipped, the suspects and both."""
    rows = []
    for finder in (*OURS, "noisy"):  # noisy: the acting rows' TrivialAugment run
        runs = [r for r in group if r["finder"] == finder and "suggestions" in r]
        for name, title in SUGGESTIONS.items() if runs else ():
            shares = [[r["suggestions"][name][g] for r in runs if r["suggestions"][name][g] is not None]
                      for g in ("on_flipped", "on_suspects", "on_flipped_suspects")]  # fmt: skip
            cells = " | ".join(f"{100 * statistics.mean(v):.1f}%" if v else "-" for v in shares)
            rows.append(f"| {finder} | {title} | {cells} | {len(runs)} |")
    columns = [
        "finder",
        "label suggested",
        "true on the flipped",
        "true on the suspects",
        "true on the flipped suspects",
    ]
    return _table([*columns, "seeds"], rows)


def accuracy_by_seed(group: list[dict], finder: str) -> dict[int, float]:
    """Test accuracy (%) of `finder`'s runs by seed."""
    return {r["seed"]: 100 * r["accuracy"] for r in group if r["finder"] == finder and "accuracy" in r}


def recovered_shares(group: list[dict], finder: str) -> dict[int, float]:
    """Per seed with a noisy and a clean run: the share of the noise's cost `finder` recovers,
    (accuracy - noisy) / (clean - noisy)."""
    noisy, clean, mine = (accuracy_by_seed(group, f) for f in ("noisy", "clean", finder))
    return {s: (mine[s] - noisy[s]) / (clean[s] - noisy[s]) for s in sorted(set(mine) & set(noisy) & set(clean))}


def acting_lines(group: list[dict]) -> list[str]:
    """Acting on the suspects: each way's test accuracy, share of the noise's cost recovered, wrong labels left
    and cost; then the paired differences rule 10 reads."""
    rows = []
    for finder, title in ACTING.items():
        runs = [r for r in group if r["finder"] == finder]
        if not runs:
            continue
        accuracy = list(accuracy_by_seed(group, finder).values())
        shares = recovered_shares(group, finder)
        share = (
            "-"
            if finder in ("noisy", "clean") or not shares
            else (f"{statistics.mean(shares.values()):.2f} ({' / '.join(f'{v:.2f}' for v in shares.values())})")
        )
        acted = [r["acted"] for r in runs if "acted" in r]
        wrong = (
            f"{statistics.mean(a['wrong_before'] for a in acted):.0f} -> {statistics.mean(a['wrong_after'] for a in acted):.0f}"
            if acted
            else "-"
        )
        rows.append(
            f"| {finder}: {title} | {runs[0]['trainings']} | {statistics.median(r['minutes'] for r in runs):.1f} "
            f"| {statistics.mean(accuracy):.2f} ± {statistics.stdev(accuracy) if len(accuracy) > 1 else 0:.2f} "
            f"| {share} | {wrong} | {len(runs)} |"
        )
    columns = ["acting on the suspects", "trainings", "minutes (median)", "test accuracy (%)"]
    lines = _table([*columns, "recovered share (per seed)", "wrong labels before -> after", "seeds"], rows)
    # Rule 10: relabel against drop, in-run against training again; rule 11: each action (and cleanlab's) against
    # the noisy run, and never_right's drop against the default cut-off's better action (relabel).
    pairs = [
        ("retrain-relabel", "retrain-drop"),
        ("retrain-drop-never-right", "retrain-drop"),
        ("retrain-relabel-never-right", "retrain-relabel"),
        ("retrain-drop-never-right", "retrain-relabel"),
        ("in-run-drop", "retrain-drop"),
        ("in-run-relabel", "retrain-relabel"),
    ]
    pairs += [(ours, "noisy") for ours in (*RETRAINS, *IN_RUN, "cleanlab-prune")]
    pairs += [(ours, "cleanlab-prune") for ours in (*RETRAINS, *IN_RUN)]
    paired = []
    for finder, other in pairs:
        mine, theirs = accuracy_by_seed(group, finder), accuracy_by_seed(group, other)
        differences = [mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs))]
        if differences:
            paired.append(
                f"| {finder} - {other} | {statistics.mean(differences):+.2f} "
                f"| {' / '.join(f'{d:+.2f}' for d in differences)} | {sum(d > 0 for d in differences)} of {len(differences)} |"
            )
    return lines + _table(["test accuracy, paired (points)", "mean", "per seed", "seeds positive"], paired)


def paired_auroc(group: list[dict], finder: str, other: str) -> list[float]:
    """Per seed both ran, the AUROC of `finder` (with the ranking it uses) minus `other`'s, in seed order."""
    mine = {r["seed"]: r["rankings"][used_ranking(finder)]["auroc"] for r in group if r["finder"] == finder}
    them = {r["seed"]: r["rankings"][THEIRS[other]]["auroc"] for r in group if r["finder"] == other}
    return [mine[s] - them[s] for s in sorted(set(mine) & set(them))]


def _cell_rows(
    groups: dict, cells, model: str, examples_per_class: int, epochs: int, ran: tuple[str, ...] = ()
) -> list[str]:
    """A headline table's rows, one per label-noise cell: its name, then `cells(group)`; with `ran`, only the
    cells where one of those finders ran."""
    rows = []
    for noise in HEADLINE_NOISE:
        group = groups.get((model, examples_per_class, noise, epochs), [])
        if ran and not any(r["finder"] in ran for r in group):
            continue
        kind, _, share = noise.partition(":")
        rows.append(f"| {kind} {100 * float(share):g}% flipped | " + " | ".join(cells(group)) + " |")
    return rows


def headline_markdown(groups: dict, model: str = "resnet", examples_per_class: int = 500, epochs: int = 40) -> str:
    """The README's table: per label-noise cell, the AUROC of every finder with the ranking it uses (mean over seeds)."""

    def cells(group: list[dict]) -> list[str]:
        values = {f: [r["rankings"][used_ranking(f)]["auroc"] for r in group if r["finder"] == f] for f in FINDERS}
        return [f"{statistics.mean(v):.3f} ({len(v)})" if v else "-" for v in values.values()]

    header = [
        "| AUROC of the ranking (seeds) | " + " | ".join(FINDERS.values()) + " |",
        "|---|" + "---|" * len(FINDERS),
    ]
    return "\n".join(header + _cell_rows(groups, cells, model, examples_per_class, epochs))


def acting_headline_markdown(
    groups: dict, model: str = "resnet", examples_per_class: int = 500, epochs: int = 40
) -> str:
    """The README's second table: per label-noise cell where it ran, the mean test accuracy of each way of acting
    on the suspects (seeds in brackets) with the share of the noise's cost it recovers; last, the trainings each
    takes."""

    def cells(group: list[dict]) -> list[str]:
        made = []
        for finder in ACTING:
            accuracy, shares = accuracy_by_seed(group, finder), recovered_shares(group, finder)
            cell = f"{statistics.mean(accuracy.values()):.2f} ({len(accuracy)})" if accuracy else "-"
            made.append(
                cell
                + (f", {statistics.mean(shares.values()):.2f}" if shares and finder not in ("noisy", "clean") else "")
            )
        return made

    header = [
        "| test accuracy % (seeds), recovered share | " + " | ".join(ACTING.values()) + " |",
        "|---|" + "---|" * len(ACTING),
    ]
    trainings = {r["finder"]: r["trainings"] for group in groups.values() for r in group if r["finder"] in ACTING}
    footer = ["| trainings | " + " | ".join(str(trainings.get(f, "-")) for f in ACTING) + " |"]
    rows = _cell_rows(groups, cells, model, examples_per_class, epochs, ran=tuple(ACTING))
    return "\n".join(header + rows + footer)


def table(options: argparse.Namespace) -> None:
    groups = grouped(options.results)
    for (model, per_class, noise, epochs), group in sorted(groups.items(), key=str):
        print(f"\n#### {model}, {per_class} images per class, label noise {noise}, {epochs} epochs\n")
        print(cell_markdown(group))
    rows = [row for group in groups.values() for row in group]
    if rows:
        last = next((r for r in reversed(rows) if r["finder"] in OURS or r["finder"] in ACTING), rows[-1])
        print(f"\nCommand of our last run ({last['finder']}): `{last['command']}`")
        print(
            f"Machine: {machine(rows[-1])}; dates: {min(r['date'] for r in rows)} to {max(r['date'] for r in rows)}."
        )


def headline(options: argparse.Namespace) -> None:
    groups = grouped(options.results)
    print(headline_markdown(groups) + "\n\n" + acting_headline_markdown(groups))


def _mean_std(values: list[dict], name: str) -> str:
    numbers = [v[name] for v in values]
    spread = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
    return f"{statistics.mean(numbers):.3f} ± {spread:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--model", choices=[m for m in MODELS if m != "digits"], default="resnet")
    runner.add_argument("--examples-per-class", type=int, default=500)
    runner.add_argument("--label-noise", default="symmetric:0.2")
    runner.add_argument("--epochs", type=int, default=40)
    runner.add_argument("--learning-rate", type=float, default=2e-3)
    runner.add_argument("--batch-size", type=int, default=128)
    runner.add_argument("--window", type=int, default=10)
    runner.add_argument("--workers", type=int, default=1)
    runner.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    runner.add_argument(
        "--finders",
        nargs="+",
        choices=[*TRAINED_FINDERS, *ACTING],
        default=list(TRAINED_FINDERS),
        help="which trainings to run (aum-package comes with sada-probe-run: it reads that run's logits; the "
        "acting rows of rules 10 and 11 run only when named; the retrain-* rows come with the noisy run that "
        "finds their suspects, cleanlab-prune with cleanlab-5-fold)",
    )
    commands.add_parser("table")
    commands.add_parser("headline", help="the README's table: every finder's AUROC in every cell")
    for command in commands.choices.values():
        command.add_argument("--results", type=Path, default=RESULTS, help="the results file (JSON lines)")
    options = parser.parse_args()
    if options.command == "run":
        # what `recipe` reads, at the accuracy benchmark's defaults
        options.imbalance_ratio, options.config_overrides, options.classes = None, None, None
        options.warmup, options.probe_every, options.logit_adjustment = 0.05, 1.0, 0.0
        run(options)
    else:
        {"table": table, "headline": headline}[options.command](options)


if __name__ == "__main__":
    main()
