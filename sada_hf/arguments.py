"""What a user sets for the main job (`sada-hf train`, examples/run_image_classification.py): model and job
arguments, parsed with the data options (`data.DataArguments`), `SADAConfig` and `TrainingArguments` by one
`HfArgumentParser`. It depends on `data.py`, never the other way round."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser, TrainingArguments

from .config import SADAConfig
from .data import DataArguments


@dataclass
class ModelArguments:
    """Which model to fine-tune, or which small one to build from a config."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Pretrained checkpoint: a Hub id (e.g. google/vit-base-patch16-224-in21k) or a local directory. "
            "Leave unset to build a small --model_type model from a config (no download)."
        },
    )
    model_type: str = field(
        default="vit",
        metadata={"help": "Model built from a config when no checkpoint is given.", "choices": ["vit", "resnet"]},
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Overrides of the built config, e.g. 'hidden_size=128,num_hidden_layers=6'."},
    )
    image_size: int = field(default=32, metadata={"help": "Input size of a model built from a config."})
    image_processor_name: str | None = field(
        default=None, metadata={"help": "Image processor to use, if not the checkpoint's."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store downloaded models and datasets."})
    model_revision: str = field(default="main", metadata={"help": "Model version: a branch, tag or commit id."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: the one from `hf auth login`)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow models and datasets with custom code."})
    ignore_mismatched_sizes: bool = field(
        default=False, metadata={"help": "Replace a checkpoint's head whose size differs from the number of labels."}
    )


@dataclass
class JobArguments:
    """The job's options beyond model, data and SADA: the training loss, and what to do with an output
    folder that holds an earlier run."""

    logit_adjustment: float = field(
        default=0.0,
        metadata={
            "help": "For long-tailed data: train on logits + TAU * log(class prior), the priors from the training "
            "labels (logit adjustment, Menon et al. 2021; 1 is their choice); evaluation and the per-example "
            "statistics use the plain logits. 0 is plain cross-entropy. Works with every strategy, 'none' included; "
            "with 'trivialaugment', 1 is the recommendation for long-tailed data trained from scratch (docs/results.md)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start over: delete the checkpoints in --output_dir and train from the first step. Without it, "
            "a command rerun on an output_dir that holds checkpoints resumes from the last complete one."
        },
    )


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


def parse_train_arguments(argv: list[str]):
    """(model, data, SADA, training, job) arguments; the embedded default run's settings fill in what the
    user left unset when no dataset and no checkpoint are named."""
    parser = HfArgumentParser((ModelArguments, DataArguments, SADAConfig, TrainingArguments, JobArguments))
    parser.set_defaults(**CLI_DEFAULTS)
    parsed = parser.parse_args_into_dataclasses(args=argv)
    model_args, data_args = parsed[0], parsed[1]
    if data_args.uses_builtin and data_args.builtin_dataset == "digits" and model_args.model_name_or_path is None:
        given = {arg.split("=")[0].lstrip("-").replace("-", "_") for arg in argv if arg.startswith("--")}
        demo = {k: v for k, v in DEMO_DEFAULTS.items() if k not in given}
        if demo:
            parser.set_defaults(**demo)
            parsed = parser.parse_args_into_dataclasses(args=argv)
    return parsed
