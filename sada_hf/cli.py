"""`sada-hf`: the command line. `sada-hf train [options]` fine-tunes an image classifier with SADA (the job
in `job.py`); `sada-hf label-issues OUTPUT_DIR` ranks a run's training examples by how likely their label
is wrong; `sada-hf review OUTPUT_DIR [data options]` writes a run's review page.

With no data or model options, `train` runs the embedded default: scikit-learn's bundled digits and a
small ViT built from a config, offline, in a few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

USAGE = """usage: sada-hf train [options]
       sada-hf label-issues OUTPUT_DIR [--top K] [--ranking NAME] [--export FILE [--action relabel|drop]]
       sada-hf review OUTPUT_DIR [data options of train] [--seed N]

train         Fine-tune an image classifier with SADA (Sample-Aware Dynamic Augmentation).
              Run `sada-hf train --help` for every option (model, data, SADA and TrainingArguments).
label-issues  Rank the training examples of a SADA run (any strategy) from most to least likely
              mislabelled and print the top K; the run drew the top suspects in
              OUTPUT_DIR/sada_label_issues.png. --export FILE writes the suspects as a
              decisions file (drop, or relabel to the suggested label) for
              `sada-hf train --decisions FILE`.
review        Write OUTPUT_DIR/sada_review.html, the page to review the suspects in a browser and export
              the decisions file (every run writes one; this rewrites it). The images are read from the
              training data: pass the data options and --seed the run was trained with."""


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv[0] == "train":
        train(argv[1:])
    elif argv[0] == "label-issues":
        show_label_issues(argv[1:])
    elif argv[0] == "review":
        write_review(argv[1:])
    else:
        sys.exit(f"sada-hf: unknown command {argv[0]!r}\n\n{USAGE}")


def train(argv: list[str]) -> dict[str, float]:
    """`sada-hf train`: the main job (`sada_hf.job.main`). Returns the evaluation metrics. A decisions file that
    does not fit the data is one line naming the problem and the fix, before anything is written."""
    from .decisions import DecisionsError
    from .job import main as run_job  # imports transformers' Trainer: only when training

    try:
        return run_job(argv)
    except DecisionsError as error:
        sys.exit(f"sada-hf train: {error}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def show_label_issues(argv: list[str]) -> None:
    """`sada-hf label-issues OUTPUT_DIR [--top K] [--ranking NAME] [--export FILE [--action relabel|drop]]`: the
    table of the top K suspects of a run, with --top their contact sheet, and with --export the suspects as a
    decisions file. Bad input is one line naming the problem and the fix, never a traceback."""
    from .decisions import SUSPECT_ACTION, suspects_to_decisions, write_decisions
    from .label_issues import CUTOFF, CUTOFFS, MOST_DRAWN, RANKINGS, SHEET, TOP_SUSPECTS, label_issues, ranking_of

    parser = argparse.ArgumentParser(prog="sada-hf label-issues", description=show_label_issues.__doc__)
    parser.add_argument("output_dir", type=Path, help="the output_dir of a SADATrainer run")
    parser.add_argument(
        "--top",
        type=_positive,
        help=f"how many suspects to print (>= 1; default {TOP_SUSPECTS}) and, when given, to draw on a contact sheet "
        f"OUTPUT_DIR/sada_label_issues_top_K.png (at most {MOST_DRAWN})",
    )
    parser.add_argument(
        "--ranking",
        choices=list(RANKINGS),
        help="rank by this score instead of the rule's choice (probe scores need a run with probes)",
    )
    parser.add_argument(
        "--cutoff",
        choices=list(CUTOFFS),
        default=CUTOFF,
        help="the rule that makes an example a suspect (counted, and exported with --export); never_right flags "
        "fewer, more surely wrong labels",
    )
    parser.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the default decisions to FILE (CSV, or Parquet for a .parquet name): the suspects, with --action",
    )
    parser.add_argument(
        "--action",
        choices=("relabel", "drop"),
        default=SUSPECT_ACTION,
        help="what --export decides for each suspect: relabel it to its suggested_label, or drop it",
    )
    options = parser.parse_args(argv)
    try:
        issues = label_issues(options.output_dir, options.ranking, options.cutoff)
        if options.export is not None:
            decisions = suspects_to_decisions(issues, options.action)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"sada-hf label-issues: {error}")
    top = issues.select(range(min(options.top or TOP_SUSPECTS, len(issues))))
    ranking = ranking_of(issues.column_names, options.ranking)
    names = _class_names(options.output_dir, issues)
    _print_table(issues, top, ranking, options.cutoff, names)
    if options.export is not None:
        write_decisions(options.export, decisions)
        print(f"\nDecisions for the {len(decisions['row'])} suspects ({options.action}) written to {options.export}")
    if options.top is not None:
        _draw_sheet(options.output_dir, top, ranking, names)
    elif (options.output_dir / SHEET).is_file():
        print(
            "\nContact sheet of the top suspects by the rule's ranking (drawn at the end of training): "
            f"{options.output_dir / SHEET}"
        )


def _class_names(output_dir: Path, issues) -> list[str]:
    """The run's class names (its model config's id2label), else the class ids."""
    from .data import class_names

    config = output_dir / "config.json"
    id2label = json.loads(config.read_text()).get("id2label", {}) if config.is_file() else {}
    columns = [column for column in ("given_label", "suggested_label") if column in issues.column_names]
    return class_names(max(len(id2label), *(int(max(issues[column])) + 1 for column in columns)), id2label=id2label)


def _print_table(issues, top, ranking: str, cutoff: str, names: list[str]) -> None:
    print(
        f"{sum(issues['suspect'])} of {len(issues)} training examples are suspects (rule {cutoff}). "
        f"Top {len(top)} by {ranking}:\n"
    )
    identity = [column for column in ("row", "id") if column in issues.column_names] or ["index"]  # sada_hf < 0.5
    print(f"| rank | {' | '.join(identity)} | given | suggested | AUM | confidence | variability | correctness |")
    print("|---" * (len(identity) + 7) + "|")
    for rank, row in enumerate(top, 1):
        suggested = names[row["suggested_label"]] if "suggested_label" in row else "-"
        print(
            f"| {rank} | {' | '.join(str(row[column]) for column in identity)} | {names[row['given_label']]} "
            f"| {suggested} | {row['aum']:.3f} | {row['confidence']:.3f} | {row['variability']:.3f} "
            f"| {row['correctness']:.2f} |"
        )


def _draw_sheet(output_dir: Path, top, ranking: str, names: list[str]) -> None:
    """The contact sheet of the `top` suspects, from the images the run kept (or an imagefolder's files)."""
    from .label_issues import MOST_DRAWN, contact_sheet, images_of

    if len(top) > MOST_DRAWN:
        print(f"\nNo contact sheet: one draws at most {MOST_DRAWN} images (--top {MOST_DRAWN} or less).")
        return
    try:
        images = images_of(output_dir, top)
    except ValueError as error:
        sys.exit(f"sada-hf label-issues: no contact sheet: {error}")
    sheet = output_dir / f"sada_label_issues_top_{len(top)}.png"
    contact_sheet(images, top, names, sheet, ranking)
    print(f"\nContact sheet of these {len(top)} suspects: {sheet}")


def write_review(argv: list[str]) -> None:
    """`sada-hf review OUTPUT_DIR [data options] [--seed N]`: write the run's review page, reading the
    images from its training data loaded with the options it was trained with (`sada-hf train`'s data
    options and seed). Bad input is one line naming the problem and the fix, never a traceback."""
    from transformers import HfArgumentParser, TrainingArguments

    from .data import DataArguments, label_names, load_splits
    from .review import write_run_review_page

    parser = HfArgumentParser(DataArguments, prog="sada-hf review", description=write_review.__doc__)
    parser.add_argument("output_dir", type=Path, help="the output_dir of a SADATrainer run")
    parser.add_argument(
        "--seed", type=int, default=TrainingArguments.seed, help="the run's --seed (its subsets and shuffles)"
    )
    data_args, options = parser.parse_args_into_dataclasses(args=argv)
    try:
        train = load_splits(data_args, seed=options.seed)["train"]
        names = label_names(train, data_args.label_column_name)
        path = write_run_review_page(
            options.output_dir, train, data_args.image_column_name, data_args.label_column_name, names
        )
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"sada-hf review: {error}")
    print(f"Wrote {path}: open it in a browser.")


if __name__ == "__main__":
    main()
