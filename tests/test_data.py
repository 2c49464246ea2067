"""Local data loaders: the balanced and the long-tailed (CIFAR-10-LT) CIFAR-10 subsets."""

from __future__ import annotations

import numpy as np
import pytest

from sada_hf.data import load_cifar10, long_tail_counts


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
