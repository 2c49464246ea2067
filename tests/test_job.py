"""The main job's transforms (the end-to-end runs are in test_cli.py)."""

from __future__ import annotations

from transformers import ViTImageProcessor

from sada_hf import SADAConfig
from sada_hf.data import DataArguments
from sada_hf.job import build_transforms


def test_flip_defaults_off_for_digits_only():
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    digits, _ = build_transforms(DataArguments(), processor, SADAConfig())
    cifar, _ = build_transforms(DataArguments(builtin_dataset="cifar10"), processor, SADAConfig())
    assert (digits.horizontal_flip, cifar.horizontal_flip) == (False, True)


def test_crop_defaults_to_random_resized_crop_for_a_checkpoint_of_224_pixels_only():
    large, small = (
        ViTImageProcessor(size={"height": 224, "width": 224}),
        ViTImageProcessor(size={"height": 32, "width": 32}),
    )
    crops = [
        build_transforms(DataArguments(), processor, SADAConfig(), from_checkpoint=from_checkpoint)[0].crop
        for processor, from_checkpoint in ((large, True), (large, False), (small, True))
    ]
    assert crops == ["random_resized_crop", "random_crop", "random_crop"]
    chosen, _ = build_transforms(DataArguments(crop="none"), large, SADAConfig(), from_checkpoint=True)
    assert chosen.crop == "none"
