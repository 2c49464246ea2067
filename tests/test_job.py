"""The main job's transforms (the end-to-end runs are in test_cli.py)."""

from __future__ import annotations

from transformers import ViTImageProcessor

from sada_hf import SADAConfig
from sada_hf.arguments import DataArguments
from sada_hf.job import build_transforms


def test_flip_defaults_off_for_digits_only():
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    digits, _ = build_transforms(DataArguments(), processor, SADAConfig())
    cifar, _ = build_transforms(DataArguments(builtin_dataset="cifar10"), processor, SADAConfig())
    assert (digits.horizontal_flip, cifar.horizontal_flip) == (False, True)
