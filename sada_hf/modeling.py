"""The model of the main job and its image processor: a pretrained checkpoint with a new head (the path a
user takes with a Hub checkpoint or a local `save_pretrained` folder), or a small model built from a config."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    ResNetConfig,
    ViTConfig,
    ViTImageProcessor,
)

from .arguments import ModelArguments

CONFIG_DEFAULTS: dict[str, Callable[[int], Any]] = {
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

    config = CONFIG_DEFAULTS[model_args.model_type](model_args.image_size)
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
