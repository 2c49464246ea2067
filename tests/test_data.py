"""Local data loaders: finding the archive, the balanced and the long-tailed (CIFAR-10-LT) CIFAR-10 subsets.

`cifar_path` is the committed fixture: 80 training and 20 test images per class.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import sada_hf.data
from sada_hf.data import (
    CIFAR10_LOOK_ALIKES,
    DataArguments,
    find_cifar10,
    label_names,
    load_cifar10,
    load_digits,
    load_splits,
    long_tail_counts,
    with_label_noise,
)


@pytest.mark.find_cifar10_allowed
def test_find_cifar10_looks_only_where_the_variable_points(monkeypatch, tmp_path):
    missing = tmp_path / "elsewhere" / "cifar10_jpeg_full.npz"
    monkeypatch.setenv("SADA_CIFAR10", str(missing))
    # Even where ../shared/data/ holds a copy, a wrong path is an error, not a fallback.
    with pytest.raises(FileNotFoundError, match=rf"SADA_CIFAR10 is set to '{re.escape(str(missing))}', but there"):
        find_cifar10()
    missing.parent.mkdir()
    missing.write_bytes(b"")
    assert find_cifar10() == missing


@pytest.mark.find_cifar10_allowed
def test_find_cifar10_says_how_to_get_the_archive(monkeypatch, tmp_path):
    monkeypatch.delenv("SADA_CIFAR10", raising=False)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")  # ../shared/data/ from here is empty
    # and so is the one beside the package's checkout, which find_cifar10 finds from the module's __file__
    monkeypatch.setattr(sada_hf.data, "__file__", str(tmp_path / "home" / "checkout" / "sada_hf" / "data.py"))
    with pytest.raises(FileNotFoundError) as error:
        find_cifar10()
    message = str(error.value)
    for place in (tmp_path, tmp_path / "home"):  # both places looked at
        assert str(place / "shared" / "data" / "cifar10_jpeg_full.npz") in message
    assert "need the full CIFAR-10 JPEG archive (cifar10_jpeg_full.npz, format in docs/development.md)" in message
    assert message.endswith("set SADA_CIFAR10=/path/to/cifar10_jpeg_full.npz.")


def test_the_fixture_has_the_archive_format(cifar_path):
    with np.load(cifar_path) as fixture:
        assert sorted(fixture.files) == sorted(
            ["train_jpeg", "train_offsets", "y_train", "test_jpeg", "test_offsets", "y_test", "class_names"]
        )
        for split, per_class in (("train", 80), ("test", 20)):
            labels, offsets, jpeg = fixture[f"y_{split}"], fixture[f"{split}_offsets"], fixture[f"{split}_jpeg"]
            assert (labels.dtype, offsets.dtype, jpeg.dtype) == (np.uint8, np.int64, np.uint8)
            assert labels.tolist() == np.repeat(np.arange(10), per_class).tolist()  # sorted by class
            assert offsets[0] == 0 and offsets[-1] == len(jpeg) and len(offsets) == len(labels) + 1
            starts = [jpeg[i : i + 2].tobytes() for i in offsets[:-1]]
            assert set(starts) == {b"\xff\xd8"}  # every image is a JPEG file, as in the archive
        assert fixture["class_names"][[0, 9]].tolist() == ["airplane", "truck"]


def test_long_tail_counts_follow_the_exponential_profile():
    counts = long_tail_counts(1000, 10, 100)
    assert counts == [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10] and sum(counts) == 2478
    for c, count in enumerate(counts):  # hand-checked against head * ratio ** (-c / 9), floored
        assert count == int(1000 * 100 ** (-c / 9))
    assert long_tail_counts(500, 10, 1) == [500] * 10


def test_long_tailed_cifar10_is_a_seeded_draw_with_those_counts(cifar_path):
    first = load_cifar10("train", examples_per_class=80, imbalance_ratio=10, seed=3, path=cifar_path)
    again = load_cifar10("train", examples_per_class=80, imbalance_ratio=10, seed=3, path=cifar_path)
    other = load_cifar10("train", examples_per_class=80, imbalance_ratio=10, seed=4, path=cifar_path)
    # int(80 * 10 ** (-c / 9)): 80, 61.9, 47.96, 37.1, 28.75, 22.3, 17.2, 13.3, 10.3, 8.0, floored; 323 images
    assert np.bincount(first["label"]).tolist() == [80, 61, 47, 37, 28, 22, 17, 13, 10, 8]
    assert first["image"][:5] == again["image"][:5] and first["image"][:5] != other["image"][:5]
    smaller = load_cifar10("train", examples_per_class=40, imbalance_ratio=4, seed=0, path=cifar_path)
    # int(40 * 4 ** (-c / 9)): 40, 34.3, 29.4, 25.2, 21.6, 18.5, 15.9, 13.6, 11.7, 10.0, floored
    assert np.bincount(smaller["label"]).tolist() == [40, 34, 29, 25, 21, 18, 15, 13, 11, 10]
    # Without `examples_per_class` the head is CIFAR-10-LT's 1,000 images, more than the fixture's 80.
    with pytest.raises(ValueError, match=r"`examples_per_class` must be in 1\.\.80 for split 'train', got 1000"):
        load_cifar10("train", imbalance_ratio=100, path=cifar_path)


def test_bad_imbalance_ratio_names_the_range(cifar_path):
    with pytest.raises(ValueError, match=r"`imbalance_ratio` must be >= 1"):
        load_cifar10("train", imbalance_ratio=0.5, path=cifar_path)


def test_symmetric_label_noise_flips_that_share_to_other_classes(cifar_path):
    clean = load_cifar10("train", examples_per_class=50, seed=0, path=cifar_path)
    noisy = with_label_noise(clean, "symmetric", 0.2, seed=5)
    labels, original = np.asarray(noisy["label"]), np.asarray(noisy["clean_label"])
    assert np.array_equal(original, np.asarray(clean["label"])) and noisy["image"][:3] == clean["image"][:3]
    flipped = labels != original
    assert flipped.sum() == 100  # exactly 20% of 500, never to the same class
    assert set(np.unique(labels[flipped])) == set(range(10))  # spread over the classes
    assert noisy.features["label"] == clean.features["label"]
    again = with_label_noise(clean, "symmetric", 0.2, seed=5)["label"]
    assert np.array_equal(again, labels) and not np.array_equal(
        with_label_noise(clean, "symmetric", 0.2, 6)["label"], labels
    )


def test_asymmetric_label_noise_flips_to_the_look_alike_class(cifar_path):
    clean = load_cifar10("train", examples_per_class=50, seed=0, path=cifar_path)
    noisy = with_label_noise(clean, "asymmetric", 0.2, seed=0)
    names = clean.features["label"].names
    labels, original = np.asarray(noisy["label"]), np.asarray(noisy["clean_label"])
    pairs = {(names[a], names[b]) for a, b in zip(original, labels) if a != b}
    assert pairs == set(CIFAR10_LOOK_ALIKES.items())
    for source in CIFAR10_LOOK_ALIKES:  # 20% of each class with a look-alike (10 of 50), none of the others
        assert (labels[original == names.index(source)] != names.index(source)).sum() == 10
    assert (labels != original).sum() == 50  # 5 classes x 10


def test_bad_label_noise_names_the_format():
    with pytest.raises(ValueError, match=r"--label_noise must be KIND:RATE .*'symmetric:0.2'"):
        DataArguments(label_noise="symmetric-0.2")
    with pytest.raises(ValueError, match=r"--label_noise must be KIND:RATE"):
        DataArguments(label_noise="symmetric:1.5")
    digits = load_digits()["train"]
    with pytest.raises(ValueError, match="needs CIFAR-10's classes"):
        with_label_noise(digits, "asymmetric", 0.2)


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
