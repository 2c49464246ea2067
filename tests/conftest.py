"""Shared fixtures: a few hundred real CIFAR-10 images and tiny ViT / ResNet models at 32x32."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import (
    ResNetConfig,
    ResNetForImageClassification,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
)

from sada_hf.data import find_cifar10, load_cifar10

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def cifar_path():
    return find_cifar10()  # fails loudly: the integration tests must not be skipped silently


@pytest.fixture(scope="session")
def cifar_train(cifar_path):
    """300 training images, 30 per class (a seeded stratified draw)."""
    return load_cifar10("train", examples_per_class=30, seed=0, path=cifar_path)


@pytest.fixture(scope="session")
def cifar_eval(cifar_path):
    return load_cifar10("test", examples_per_class=6, seed=0, path=cifar_path)


def tiny_vit(num_labels: int = 10, seed: int = 0) -> ViTForImageClassification:
    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=num_labels,
    )
    return ViTForImageClassification(config)


def tiny_resnet(num_labels: int = 10, seed: int = 0) -> ResNetForImageClassification:
    torch.manual_seed(seed)
    config = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=num_labels)
    return ResNetForImageClassification(config)


def training_args(output_dir, **overrides) -> TrainingArguments:
    """Fast, quiet CPU arguments; `overrides` win."""
    defaults = dict(
        output_dir=str(output_dir),
        num_train_epochs=5,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        learning_rate=1e-3,
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    defaults.update(overrides)
    return TrainingArguments(**defaults)
