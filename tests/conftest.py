"""Shared fixtures: a few hundred real CIFAR-10 images and tiny ViT / ResNet models at 32x32.

The images come from tests/fixtures/cifar10_small.npz (80 training and 20 test images per class, in the
full archive's format; see tests/fixtures/README.md), so the suite needs nothing beside the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    ResNetConfig,
    ResNetForImageClassification,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
)

import sada_hf.data
from sada_hf.data import load_cifar10

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)

CIFAR10_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "cifar10_small.npz"
_FIND_CIFAR10 = sada_hf.data.find_cifar10


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "find_cifar10_allowed: the test calls the real sada_hf.data.find_cifar10 (its own tests)"
    )


def _archive_is_not_for_tests(*args, **kwargs):
    # pytest.fail raises a BaseException, so no `except Exception` on the way can swallow it.
    pytest.fail(
        "A test reached sada_hf.data.find_cifar10, which looks for the full CIFAR-10 archive. Tests must use "
        "the committed fixture: take the `cifar_path` fixture (tests/fixtures/cifar10_small.npz) and pass it as "
        "`path=` to load_cifar10.",
        pytrace=False,
    )


@pytest.fixture(autouse=True)
def _no_cifar10_archive(request, monkeypatch):
    """Replace find_cifar10 in every module that holds it (the package's, the tests', the benchmarks'), so
    a test that still looks for the full archive fails here instead of passing only where the archive is."""
    if request.node.get_closest_marker("find_cifar10_allowed"):
        return
    for module in list(sys.modules.values()):
        # The namespace, not getattr(module, ...): lazy modules (transformers) import on unknown attributes.
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and namespace.get("find_cifar10") is _FIND_CIFAR10:
            monkeypatch.setattr(module, "find_cifar10", _archive_is_not_for_tests)


@pytest.fixture(scope="session")
def cifar_path() -> Path:
    """The committed CIFAR-10 fixture, in the full archive's format (80 train / 20 test images per class)."""
    return CIFAR10_FIXTURE


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


def example_labels(num_examples: int, num_labels: int) -> torch.Tensor:
    """Labels 0, 1, ..., K-1, 0, 1, ... for the state tests that feed logits by hand."""
    return torch.arange(num_examples) % num_labels
