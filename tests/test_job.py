"""The main job's building blocks: data from every source, models, metrics, argument defaults."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest
import torch
from transformers import EvalPrediction, ViTForImageClassification, ViTImageProcessor

from sada_hf import SADAConfig
from sada_hf.cli import DEMO_DEFAULTS, parse_train_arguments
from sada_hf.data import load_cifar10, load_digits
from sada_hf.job import (
    _METRICS,
    DataArguments,
    ModelArguments,
    build_compute_metrics,
    build_model_and_processor,
    build_transforms,
    label_names,
    load_splits,
)


def test_digits_are_stratified_seeded_and_offline():
    splits = load_digits(seed=3)
    assert (len(splits["train"]), len(splits["validation"])) == (1438, 359)
    counts = np.bincount(splits["validation"]["label"])
    assert counts.min() >= 35 and counts.max() <= 37
    assert splits["train"][0]["image"].size == (8, 8)
    assert load_digits(seed=3)["train"]["label"] == splits["train"]["label"]


def test_cifar10_subset_is_stratified_and_keeps_the_jpeg_bytes(cifar_path):
    subset = load_cifar10("train", examples_per_class=7, seed=1, path=cifar_path)
    assert np.bincount(subset["label"]).tolist() == [7] * 10
    raw = subset.cast_column("image", type(subset.features["image"])(decode=False))[0]["image"]["bytes"]
    assert raw[:2] == b"\xff\xd8"  # JPEG, not re-encoded
    with pytest.raises(ValueError, match=r"`examples_per_class` must be in 1\.\.80 for split 'train', got 81"):
        load_cifar10("train", examples_per_class=81, path=cifar_path)  # the fixture holds 80 per class


def test_imagefolder_source(tmp_path, cifar_train):
    for split, rows in (("train", range(0, 40)), ("val", range(40, 60))):
        for i in rows:
            example = cifar_train[i]
            folder = tmp_path / split / cifar_train.features["label"].names[example["label"]]
            folder.mkdir(parents=True, exist_ok=True)
            example["image"].save(folder / f"{i}.png")
    splits = load_splits(DataArguments(train_dir=str(tmp_path / "train"), validation_dir=str(tmp_path / "val")))
    assert (len(splits["train"]), len(splits["validation"])) == (40, 20)
    assert label_names(splits["train"], "label") == sorted(cifar_train.features["label"].names)


def test_hub_layout_source_with_held_out_split(tmp_path, cifar_train):
    """`--dataset_name` goes through `datasets.load_dataset`, here on a local repo-like directory."""
    (tmp_path / "data").mkdir()
    cifar_train.select(range(50)).to_parquet(tmp_path / "data" / "train-00000-of-00001.parquet")
    splits = load_splits(DataArguments(dataset_name=str(tmp_path), train_val_split=0.2), seed=0)
    assert (len(splits["train"]), len(splits["validation"])) == (40, 10)
    assert splits["train"].features["image"].__class__.__name__ == "Image"


def test_sample_limits_and_argument_conflicts():
    splits = load_splits(DataArguments(max_train_samples=100, max_eval_samples=20))
    assert (len(splits["train"]), len(splits["validation"])) == (100, 20)
    with pytest.raises(ValueError, match="not both"):
        DataArguments(dataset_name="x", train_dir="y")


def test_model_from_config_and_from_a_local_checkpoint(tmp_path):
    labels = ["cat", "dog", "fish"]
    model, processor = build_model_and_processor(ModelArguments(model_type="resnet", image_size=32), labels)
    assert model.config.num_labels == 3 and model.config.id2label[2] == "fish"
    assert processor.size == {"height": 32, "width": 32}

    source = ViTForImageClassification(build_model_and_processor(ModelArguments(), ["a", "b"])[0].config)
    source.save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    model, processor = build_model_and_processor(
        ModelArguments(model_name_or_path=str(tmp_path), ignore_mismatched_sizes=True), labels
    )
    assert model.config.num_labels == 3 and processor.size["height"] == 32
    assert torch.equal(
        model.vit.embeddings.patch_embeddings.projection.weight,
        source.vit.embeddings.patch_embeddings.projection.weight,
    )


def test_overrides_change_the_built_config():
    model, _ = build_model_and_processor(
        ModelArguments(config_overrides="hidden_size=48,num_hidden_layers=2"), ["a", "b"]
    )
    assert model.config.hidden_size == 48 and model.config.num_hidden_layers == 2


def test_flip_defaults_off_for_digits_only():
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    digits, _ = build_transforms(DataArguments(), processor, SADAConfig())
    cifar, _ = build_transforms(DataArguments(builtin_dataset="cifar10"), processor, SADAConfig())
    assert (digits.horizontal_flip, cifar.horizontal_flip) == (False, True)


def test_metric_modules_load_offline_and_compute_by_hand():
    accuracy = evaluate.load(str(_METRICS / "accuracy"))
    assert accuracy.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]) == {"accuracy": 0.75}
    shots = evaluate.load(str(_METRICS / "shot_accuracy"))
    # classes 0: 150 images (many), 1: 50 (medium), 2: 5 (few)
    result = shots.compute(
        predictions=[0, 0, 1, 0, 2, 0], references=[0, 0, 1, 1, 2, 2], train_class_counts=[150, 50, 5]
    )
    assert result == {"many_shot_accuracy": 1.0, "medium_shot_accuracy": 0.5, "few_shot_accuracy": 0.5}


def test_compute_metrics_adds_shot_accuracy_only_for_long_tailed_data():
    logits = np.eye(3)[[0, 1, 2, 0]]
    prediction = EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 2, 2]))
    balanced = build_compute_metrics(np.repeat([0, 1, 2], 120), 3)(prediction)
    assert balanced == {"accuracy": 0.75}
    tailed = build_compute_metrics(np.repeat([0, 1, 2], [300, 60, 10]), 3)(prediction)
    assert tailed["few_shot_accuracy"] == 0.5 and tailed["many_shot_accuracy"] == 1.0


def test_demo_defaults_fill_only_what_the_user_left_unset():
    _, _, _, args = parse_train_arguments(["--learning_rate", "0.01"])
    assert args.learning_rate == 0.01 and args.num_train_epochs == DEMO_DEFAULTS["num_train_epochs"]
    assert args.output_dir == "sada-output" and args.eval_strategy == "epoch"
    _, _, _, args = parse_train_arguments(["--builtin_dataset", "cifar10"])
    assert args.num_train_epochs == 3 and args.learning_rate == 5e-5  # Trainer's own defaults
    _, _, sada, _ = parse_train_arguments(["--strategy", "random", "--window", "5"])
    assert (sada.strategy, sada.window) == ("random", 5)


def test_config_overrides_take_lists_and_refuse_unknown_keys():
    from transformers import ResNetConfig

    from sada_hf.job import apply_config_overrides

    config = ResNetConfig()
    apply_config_overrides(
        config, "embedding_size=48,hidden_sizes=[8,16],depths=[1,2],layer_type=basic,downsample_in_first_stage=true"
    )
    assert (config.embedding_size, list(config.hidden_sizes), list(config.depths)) == (48, [8, 16], [1, 2])
    assert config.layer_type == "basic" and config.downsample_in_first_stage is True
    with pytest.raises(ValueError, match="no such attribute"):
        apply_config_overrides(config, "hidden_szes=[1]")
