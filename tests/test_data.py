"""Local data loaders: the balanced and the long-tailed (CIFAR-10-LT) CIFAR-10 subsets."""

from __future__ import annotations

import numpy as np
import pytest

from sada_hf.data import CIFAR10_LOOK_ALIKES, load_cifar10, load_digits, long_tail_counts, with_label_noise
from sada_hf.job import DataArguments


def test_long_tail_counts_follow_the_exponential_profile():
    counts = long_tail_counts(1000, 10, 100)
    assert counts == [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10] and sum(counts) == 2478
    for c, count in enumerate(counts):  # hand-checked against head * ratio ** (-c / 9), floored
        assert count == int(1000 * 100 ** (-c / 9))
    assert long_tail_counts(500, 10, 1) == [500] * 10


def test_long_tailed_cifar10_is_a_seeded_draw_with_those_counts(cifar_path):
    first = load_cifar10("train", imbalance_ratio=100, seed=3, path=cifar_path)
    again = load_cifar10("train", imbalance_ratio=100, seed=3, path=cifar_path)
    other = load_cifar10("train", imbalance_ratio=100, seed=4, path=cifar_path)
    assert np.bincount(first["label"]).tolist() == long_tail_counts(1000, 10, 100)
    assert first["image"][:5] == again["image"][:5] and first["image"][:5] != other["image"][:5]
    smaller = load_cifar10("train", examples_per_class=200, imbalance_ratio=10, seed=0, path=cifar_path)
    assert np.bincount(smaller["label"]).tolist() == long_tail_counts(200, 10, 10)


def test_bad_imbalance_ratio_names_the_range(cifar_path):
    with pytest.raises(ValueError, match=r"`imbalance_ratio` must be >= 1"):
        load_cifar10("train", imbalance_ratio=0.5, path=cifar_path)


def test_symmetric_label_noise_flips_that_share_to_other_classes(cifar_path):
    clean = load_cifar10("train", examples_per_class=100, seed=0, path=cifar_path)
    noisy = with_label_noise(clean, "symmetric", 0.2, seed=5)
    labels, original = np.asarray(noisy["label"]), np.asarray(noisy["clean_label"])
    assert np.array_equal(original, np.asarray(clean["label"])) and noisy["image"][:3] == clean["image"][:3]
    flipped = labels != original
    assert flipped.sum() == 200  # exactly 20% of 1,000, never to the same class
    assert set(np.unique(labels[flipped])) == set(range(10))  # spread over the classes
    assert noisy.features["label"] == clean.features["label"]
    again = with_label_noise(clean, "symmetric", 0.2, seed=5)["label"]
    assert np.array_equal(again, labels) and not np.array_equal(
        with_label_noise(clean, "symmetric", 0.2, 6)["label"], labels
    )


def test_asymmetric_label_noise_flips_to_the_look_alike_class(cifar_path):
    clean = load_cifar10("train", examples_per_class=100, seed=0, path=cifar_path)
    noisy = with_label_noise(clean, "asymmetric", 0.2, seed=0)
    names = clean.features["label"].names
    labels, original = np.asarray(noisy["label"]), np.asarray(noisy["clean_label"])
    pairs = {(names[a], names[b]) for a, b in zip(original, labels) if a != b}
    assert pairs == set(CIFAR10_LOOK_ALIKES.items())
    for source in CIFAR10_LOOK_ALIKES:  # 20% of each class with a look-alike, none of the others
        assert (labels[original == names.index(source)] != names.index(source)).sum() == 20
    assert (labels != original).sum() == 100


def test_bad_label_noise_names_the_format():
    with pytest.raises(ValueError, match=r"--label_noise must be KIND:RATE .*'symmetric:0.2'"):
        DataArguments(label_noise="symmetric-0.2")
    with pytest.raises(ValueError, match=r"--label_noise must be KIND:RATE"):
        DataArguments(label_noise="symmetric:1.5")
    digits = load_digits()["train"]
    with pytest.raises(ValueError, match="needs CIFAR-10's classes"):
        with_label_noise(digits, "asymmetric", 0.2)
