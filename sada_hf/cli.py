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

Fine-tune an image classifier with SADA (Sample-Aware Dynamic Augmentation).
Run `sada-hf train --help` for every option (model, data, SADA and TrainingArguments)."""

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
    if argv[0] != "train":
        sys.exit(f"sada-hf: unknown command {argv[0]!r}\n\n{USAGE}")
    train(argv[1:])


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
