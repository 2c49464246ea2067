"""Building blocks of the main job (`sada-hf train`, examples/run_image_classification.py): its
arguments, data, model, transforms, metrics and the train-evaluate-publish tail, so the scripts
themselves read top to bottom."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import evaluate
import numpy as np
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    EvalPrediction,
    ResNetConfig,
    TrainingArguments,
    ViTConfig,
    ViTImageProcessor,
)

from .config import SADAConfig
from .data import LABEL_NOISE_KINDS, find_cifar10, load_cifar10, load_digits, with_label_noise
from .transform import CROPS, EvalTransform, SADATransform

if TYPE_CHECKING:
    from .trainer import SADATrainer

BUILTIN_DATASETS = ("digits", "cifar10")
DATA_RECORD = "sada_data.json"
_METRICS = Path(__file__).parent / "metrics"
_CONFIG_DEFAULTS: dict[str, Callable[[int], Any]] = {
    # Small models built from a config (no download): a 4-layer ViT and a 3-stage ResNet.
    "vit": lambda size: ViTConfig(
        image_size=size,
        patch_size=4,
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
    ),
    "resnet": lambda size: ResNetConfig(
        embedding_size=32, hidden_sizes=[32, 64, 128], depths=[1, 1, 1], layer_type="basic"
    ),
}


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
            "help": "Flip a seeded share of the training labels to test label-error finding: 'symmetric:0.2' (20% "
            "to another class, uniformly) or 'asymmetric:0.2' (cifar10: 20% of truck, bird, deer, cat, dog to "
            "automobile, airplane, horse, dog, cat). The labels before flipping go to a `clean_label` column."
        },
    )
    train_val_split: float = field(
        default=0.15, metadata={"help": "Fraction of the training split held out when there is no evaluation split."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep this many training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep this many evaluation images."})
    image_column_name: str = field(default="image", metadata={"help": "Column holding the images."})
    label_column_name: str = field(default="label", metadata={"help": "Column holding the class ids."})
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
            kind, _, rate = self.label_noise.partition(":")
            try:
                valid = kind in LABEL_NOISE_KINDS and 0 < float(rate) < 1
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(
                    f"--label_noise must be KIND:RATE with KIND in {LABEL_NOISE_KINDS} and 0 < RATE < 1 (e.g. "
                    f"'symmetric:0.2'), got {self.label_noise!r}."
                )

    @property
    def uses_builtin(self) -> bool:
        return self.dataset_name is None and self.train_dir is None


def load_splits(data: DataArguments, seed: int = 0, cache_dir: str | None = None, token: str | None = None):
    """A `DatasetDict` with `train` and `validation` splits, from the Hub, an imagefolder or a built-in set."""
    if data.dataset_name is not None:
        splits = datasets.load_dataset(data.dataset_name, data.dataset_config_name, cache_dir=cache_dir, token=token)
    elif data.train_dir is not None:
        files = {"train": os.path.join(data.train_dir, "**")}
        if data.validation_dir is not None:
            files["validation"] = os.path.join(data.validation_dir, "**")
        splits = datasets.load_dataset("imagefolder", data_files=files, cache_dir=cache_dir)
    elif data.builtin_dataset == "cifar10":
        path = find_cifar10()
        splits = datasets.DatasetDict(
            train=load_cifar10(
                "train",
                data.examples_per_class,
                seed=seed,
                path=path,
                imbalance_ratio=data.imbalance_ratio,
                classes=data.classes,
            ),
            validation=load_cifar10("test", seed=seed, path=path, classes=data.classes),
        )
    else:
        splits = load_digits(seed=seed)

    if "validation" not in splits:
        held_out = next((name for name in ("test", "valid", "val") if name in splits), None)
        if held_out is not None:
            splits["validation"] = splits.pop(held_out)
        else:
            parts = splits["train"].train_test_split(data.train_val_split, seed=seed)
            splits["train"], splits["validation"] = parts["train"], parts["test"]
    for name, limit in (("train", data.max_train_samples), ("validation", data.max_eval_samples)):
        if limit is not None:
            splits[name] = splits[name].shuffle(seed=seed).select(range(min(limit, len(splits[name]))))
    if data.label_noise is not None:
        kind, _, rate = data.label_noise.partition(":")
        splits["train"] = with_label_noise(splits["train"], kind, float(rate), seed, data.label_column_name)
    return splits


def label_names(dataset: datasets.Dataset, label_column: str) -> list[str]:
    """Class names from a `ClassLabel` column, else the sorted distinct ids as strings."""
    feature = dataset.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    return [str(i) for i in range(int(max(dataset.unique(label_column))) + 1)]


def build_model_and_processor(model_args: ModelArguments, labels: list[str]):
    """The model (pretrained with a new head, or built from a small config) and its image processor."""
    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    hub = dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token)
    if model_args.model_name_or_path is not None:
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            finetuning_task="image-classification",
            trust_remote_code=model_args.trust_remote_code,
            **hub,
        )
        model = AutoModelForImageClassification.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
            trust_remote_code=model_args.trust_remote_code,
            **hub,
        )
        processor = AutoImageProcessor.from_pretrained(
            model_args.image_processor_name or model_args.model_name_or_path,
            trust_remote_code=model_args.trust_remote_code,
            **hub,
        )
        return model, processor

    config = _CONFIG_DEFAULTS[model_args.model_type](model_args.image_size)
    config.num_labels, config.id2label, config.label2id = len(labels), id2label, label2id
    if model_args.config_overrides:
        apply_config_overrides(config, model_args.config_overrides)
    model = AutoModelForImageClassification.from_config(config)
    size = model_args.image_size
    processor = ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return model, processor


def apply_config_overrides(config: Any, overrides: str) -> None:
    """Apply 'key=value,key=[1,2]' to `config`. Like `PreTrainedConfig.update_from_string`, but values
    may be JSON lists (ResNet's hidden_sizes and depths); each key must exist on the config."""
    for key, raw in re.findall(r"(\w+)=(\[[^\]]*\]|[^,]+)", overrides):
        if not hasattr(config, key):
            raise ValueError(f"Config override {key!r}: {type(config).__name__} has no such attribute.")
        current = getattr(config, key)
        if isinstance(current, bool):
            value = raw.lower() in ("true", "1", "yes")
        elif isinstance(current, str):
            value = raw
        else:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            if isinstance(current, tuple) and isinstance(value, list):
                value = tuple(value)
        setattr(config, key, value)


def build_transforms(data: DataArguments, processor: Any, config: SADAConfig) -> tuple[SADATransform, EvalTransform]:
    """The training transform (SADA) and the matching evaluation transform."""
    flip = (
        data.horizontal_flip
        if data.horizontal_flip is not None
        else not (data.uses_builtin and data.builtin_dataset == "digits")
    )
    train = SADATransform(
        processor,
        crop=data.crop,
        horizontal_flip=flip,
        image_column=data.image_column_name,
        label_column=data.label_column_name,
        config=config,
    )
    return train, train.for_evaluation()


def build_compute_metrics(train_labels: np.ndarray, num_labels: int) -> Callable[[EvalPrediction], dict[str, float]]:
    """`compute_metrics` for the Trainer: accuracy, and many/medium/few-shot accuracy when the training
    classes span more than one shot group (long-tailed data), from the metric modules shipped with
    sada_hf (they load offline)."""
    accuracy = evaluate.load(str(_METRICS / "accuracy"))
    shot_accuracy = evaluate.load(str(_METRICS / "shot_accuracy"))
    counts = np.bincount(np.asarray(train_labels), minlength=num_labels)
    # Shot groups (ImageNet-LT): many > 100, medium 20-100, few < 20 training images per class.
    long_tailed = len({int(c > 100) - int(c < 20) for c in counts}) > 1

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        predictions = np.argmax(prediction.predictions, axis=1)
        metrics = accuracy.compute(predictions=predictions, references=prediction.label_ids)
        if long_tailed:
            metrics.update(
                shot_accuracy.compute(
                    predictions=predictions, references=prediction.label_ids, train_class_counts=counts.tolist()
                )
            )
        return metrics

    return compute_metrics


def train_evaluate_and_publish(
    trainer: SADATrainer, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
) -> dict[str, float]:
    """Train (resuming from `--resume_from_checkpoint`: a path, or True for the last one), save the
    model and SADA state, evaluate, then write the model card (SADA section, plots, `sada` tag) or
    push everything to the Hub. Returns the evaluation metrics."""
    resume = training_args.resume_from_checkpoint
    result = trainer.train(resume_from_checkpoint=True if resume in ("True", "true") else resume)
    trainer.save_model()  # also writes the per-example summary (sada_examples.parquet)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()

    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)

    if trainer.is_world_process_zero():  # how to rebuild the training split (for `sada-hf label-issues`)
        record = {"data": dataclasses.asdict(data_args), "seed": training_args.seed}
        Path(training_args.output_dir, DATA_RECORD).write_text(json.dumps(record, indent=2) + "\n")

    card = dict(
        finetuned_from=model_args.model_name_or_path,
        tasks="image-classification",
        dataset=data_args.dataset_name or data_args.train_dir or data_args.builtin_dataset,
        tags=["image-classification", "vision"],
    )
    if training_args.push_to_hub:
        trainer.push_to_hub(**card)
    else:
        trainer.create_model_card(**card)
    if trainer.is_world_process_zero():
        print(f"eval accuracy: {metrics['eval_accuracy']:.4f}  (model, card and plots in {training_args.output_dir})")
    return metrics


def training_images(output_dir: str | os.PathLike) -> list:
    """The image cells of the training split a `sada-hf train` run in `output_dir` trained on, rebuilt from
    `sada_data.json` (same data arguments and seed, so item i is the example with index i)."""
    path = Path(output_dir, DATA_RECORD)
    if not path.is_file():
        raise FileNotFoundError(
            f"No {DATA_RECORD} in {output_dir}: it was not written by `sada-hf train`. Build the training dataset "
            "yourself and call sada_hf.label_issues.contact_sheet(dataset['image'], issues, names, path)."
        )
    record = json.loads(path.read_text())
    data = DataArguments(**record["data"])
    return load_splits(data, seed=record["seed"])["train"].with_format(None)[data.image_column_name]
