"""`sada-hf`: the command line. `sada-hf train [options]` fine-tunes an image classifier with SADA.

With no data or model options it runs the embedded default: scikit-learn's bundled digits and a
small ViT built from a config, offline, in a few minutes on two CPU cores.
"""

from __future__ import annotations

import sys

import torch
from transformers import HfArgumentParser, TrainingArguments, set_seed
from transformers.utils import logging

from .config import SADAConfig
from .job import (
    DataArguments,
    ModelArguments,
    build_compute_metrics,
    build_model_and_processor,
    build_transforms,
    label_names,
    load_splits,
    train_evaluate_and_publish,
)
from .trainer import SADATrainer

logger = logging.get_logger(__name__)

USAGE = """usage: sada-hf train [options]
       sada-hf label-issues OUTPUT_DIR [--top K]

train         Fine-tune an image classifier with SADA (Sample-Aware Dynamic Augmentation).
              Run `sada-hf train --help` for every option (model, data, SADA and TrainingArguments).
label-issues  Rank the training examples of a run with --influence probe from most to least likely
              mislabelled, print the top K and draw them in OUTPUT_DIR/sada_label_issues.png."""

# Defaults of the command (the TrainingArguments fields below otherwise default to Trainer's).
CLI_DEFAULTS = dict(
    output_dir="sada-output",
    eval_strategy="epoch",
    save_strategy="epoch",
    save_total_limit=2,
    logging_strategy="epoch",
    dataloader_pin_memory=torch.cuda.is_available(),
)
# The embedded default run (digits, small ViT from scratch), applied where the user set nothing.
DEMO_DEFAULTS = dict(
    num_train_epochs=50,
    learning_rate=1e-3,
    weight_decay=0.05,
    per_device_train_batch_size=64,
    per_device_eval_batch_size=256,
    lr_scheduler_type="cosine",
    warmup_steps=0.05,
)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv[0] == "train":
        train(argv[1:])
    elif argv[0] == "label-issues":
        show_label_issues(argv[1:])
    else:
        sys.exit(f"sada-hf: unknown command {argv[0]!r}\n\n{USAGE}")


def show_label_issues(argv: list[str]) -> None:
    """`sada-hf label-issues OUTPUT_DIR [--top K]`: the table of the top K suspects, and their contact sheet."""
    import argparse
    import json
    from pathlib import Path

    from .job import training_images
    from .label_issues import SHEET, contact_sheet, label_issues

    parser = argparse.ArgumentParser(prog="sada-hf label-issues", description=show_label_issues.__doc__)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--top", type=int, default=32)
    options = parser.parse_args(argv)
    try:
        issues = label_issues(options.output_dir)
    except FileNotFoundError as error:
        sys.exit(f"sada-hf label-issues: {error}")
    config = options.output_dir / "config.json"
    id2label = json.loads(config.read_text()).get("id2label", {}) if config.is_file() else {}
    num_labels = max(len(id2label), int(max(issues["given_label"])) + 1, int(max(issues["predicted_label"])) + 1)
    names = [id2label.get(str(i), str(i)) for i in range(num_labels)]
    top = issues.select(range(min(options.top, len(issues))))
    suspects = sum(issues["suspect"])
    print(f"{suspects} of {len(issues)} training examples have a negative AUM (suspects). Top {len(top)}:\n")
    print("| rank | index | given | predicted | AUM | confidence | variability | correctness |")
    print("|---|---|---|---|---|---|---|---|")
    for rank, row in enumerate(top, 1):
        print(
            f"| {rank} | {row['index']} | {names[row['given_label']]} | {names[row['predicted_label']]} "
            f"| {row['aum']:.3f} | {row['confidence']:.3f} | {row['variability']:.3f} | {row['correctness']:.2f} |"
        )
    try:
        images = training_images(options.output_dir)
    except FileNotFoundError as error:
        print(f"\nNo contact sheet: {error}")
        return
    contact_sheet(images, top, names, options.output_dir / SHEET)
    print(f"\nContact sheet: {options.output_dir / SHEET}")


def parse_train_arguments(argv: list[str]):
    """(model, data, SADA, training) arguments; the embedded default run's settings fill in what the
    user left unset when no dataset and no checkpoint are named."""
    parser = HfArgumentParser((ModelArguments, DataArguments, SADAConfig, TrainingArguments))
    parser.set_defaults(**CLI_DEFAULTS)
    model_args, data_args, sada_config, training_args = parser.parse_args_into_dataclasses(args=argv)
    if data_args.uses_builtin and data_args.builtin_dataset == "digits" and model_args.model_name_or_path is None:
        given = {arg.split("=")[0].lstrip("-").replace("-", "_") for arg in argv if arg.startswith("--")}
        demo = {k: v for k, v in DEMO_DEFAULTS.items() if k not in given}
        if demo:
            parser.set_defaults(**demo)
            model_args, data_args, sada_config, training_args = parser.parse_args_into_dataclasses(args=argv)
    return model_args, data_args, sada_config, training_args


def train(argv: list[str]) -> dict[str, float]:
    """The main job: data -> model -> SADA transforms -> SADATrainer -> evaluation, model card, plots."""
    model_args, data_args, sada_config, training_args = parse_train_arguments(argv)
    logging.set_verbosity(training_args.get_process_log_level())
    set_seed(training_args.seed)

    splits = load_splits(data_args, seed=training_args.seed, cache_dir=model_args.cache_dir, token=model_args.token)
    labels = label_names(splits["train"], data_args.label_column_name)
    model, processor = build_model_and_processor(model_args, labels)
    train_transform, eval_transform = build_transforms(data_args, processor, sada_config)
    splits["train"].set_transform(train_transform)
    splits["validation"].set_transform(eval_transform)

    trainer = SADATrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=processor,
        compute_metrics=build_compute_metrics(
            splits["train"].with_format("numpy")[data_args.label_column_name], len(labels)
        ),
        sada_config=sada_config,
    )
    return train_evaluate_and_publish(trainer, model_args, data_args, training_args)


if __name__ == "__main__":
    main()
