"""What a user sets for the main job (`sada-hf train`, examples/run_image_classification.py): model and
data arguments, with `SADAConfig` and `TrainingArguments` parsed together by one `HfArgumentParser`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser, TrainingArguments

from .config import SADAConfig
from .data import BUILTIN_DATASETS, parse_label_noise
from .transform import CROPS


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
class DataArguments:
    """Which images to train and evaluate on, and how to augment them."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A dataset on the Hub (or a local directory laid out like one)."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration name."})
    train_dir: str | None = field(default=None, metadata={"help": "An imagefolder of training images (class/image)."})
    validation_dir: str | None = field(default=None, metadata={"help": "An imagefolder of evaluation images."})
    builtin_dataset: str = field(
        default="digits",
        metadata={
            "help": "Used when no dataset is named: 'digits' (scikit-learn's, bundled) or 'cifar10' (the JPEG "
            "archive at $SADA_CIFAR10 or ../shared/data).",
            "choices": list(BUILTIN_DATASETS),
        },
    )
    examples_per_class: int | None = field(
        default=None, metadata={"help": "cifar10: training images per class (a seeded stratified subset)."}
    )
    imbalance_ratio: float | None = field(
        default=None,
        metadata={
            "help": "cifar10: a long-tailed training set (CIFAR-10-LT): --examples_per_class images (default "
            "1000) of class 0 down to that many / ratio of class 9, exponentially (100: 1000 ... 10)."
        },
    )
    classes: list[str] | None = field(
        default=None,
        metadata={
            "help": "cifar10: keep only these classes, relabelled 0..K-1 in the order given (e.g. --classes airplane "
            "automobile ship truck); with --imbalance_ratio the tail follows that order."
        },
    )
    label_noise: str | None = field(
        default=None,
        metadata={
            "help": "Flip a seeded share of the training labels to test label-error finding: 'symmetric:0.2' (a "
            "fifth to another class, uniformly) or 'asymmetric:0.2' (cifar10: a fifth of truck, bird, deer, cat, dog "
            "to automobile, airplane, horse, dog, cat). The labels before flipping go to a `clean_label` column."
        },
    )
    decisions: str | None = field(
        default=None,
        metadata={
            "help": "A decisions file (CSV or Parquet: row, id, given_label, action, label; docs/usage.md) to apply to "
            "the training split before training: its drops left out, its relabels given their new label "
            "(`sada-hf label-issues RUN --export FILE` writes one). Applied after --max_train_samples and "
            "--label_noise, by each example's row; a file that does not fit the data is refused before training."
        },
    )
    train_val_split: float = field(
        default=0.15, metadata={"help": "Fraction of the training split held out when there is no evaluation split."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep this many training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep this many evaluation images."})
    image_column_name: str = field(default="image", metadata={"help": "Column holding the images."})
    label_column_name: str = field(default="label", metadata={"help": "Column holding the class ids."})
    id_column_name: str | None = field(
        default=None,
        metadata={
            "help": "Column naming each training example (a file name, a key): label issues, the per-example "
            "summary and decisions files carry it as `id` (default: the image's file path for an imagefolder)."
        },
    )
    crop: str = field(
        default="random_crop",
        metadata={"help": "Base crop before the SADA op.", "choices": list(CROPS)},
    )
    horizontal_flip: bool | None = field(
        default=None, metadata={"help": "Flip with probability 1/2 (default: on, off for digits)."}
    )

    def __post_init__(self) -> None:
        if self.dataset_name and (self.train_dir or self.validation_dir):
            raise ValueError("Give either --dataset_name or --train_dir/--validation_dir, not both.")
        if self.classes is not None and not (self.uses_builtin and self.builtin_dataset == "cifar10"):
            raise ValueError("--classes selects classes of --builtin_dataset cifar10; other datasets keep theirs.")
        if self.label_noise is not None:
            parse_label_noise(self.label_noise)  # a clear error now, not after the data is loaded

    @property
    def uses_builtin(self) -> bool:
        return self.dataset_name is None and self.train_dir is None


@dataclass
class JobArguments:
    """The job's options beyond model, data and SADA: the training loss, and what to do with an output
    folder that holds an earlier run."""

    logit_adjustment: float = field(
        default=0.0,
        metadata={
            "help": "For long-tailed data: train on logits + TAU * log(class prior), the priors from the training "
            "labels (logit adjustment, Menon et al. 2021; 1 is their choice); evaluation and the per-example "
            "statistics use the plain logits. 0 is plain cross-entropy. Works with every strategy, 'none' included."
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
