"""The strength rules: min-max and rank normalisation, direction, entropy, the shuffled control and the
random baseline, by hand and against NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sada_hf.strengths import entropy_strengths, instability_strengths, random_strengths, shuffled_strengths


def test_minmax_strengths_and_direction_by_hand():
    variance = torch.tensor([4.0, 1.0, 2.0, math.nan, 3.0])
    stable_strong = instability_strengths(variance, "minmax", "stable_strong")
    expected = torch.tensor([0.0, 1.0, 2 / 3, math.nan, 1 / 3])
    assert torch.allclose(stable_strong, expected, equal_nan=True)
    unstable_strong = instability_strengths(variance, "minmax", "unstable_strong")
    assert torch.allclose(unstable_strong, 1 - expected, equal_nan=True)


def test_rank_strengths_share_ranks_on_ties():
    variance = torch.tensor([3.0, 1.0, 2.0, 2.0, math.nan])
    # ranks 3, 0, 1.5, 1.5 over n - 1 = 3; low variance -> strong
    expected = torch.tensor([0.0, 1.0, 0.5, 0.5, math.nan])
    assert torch.allclose(instability_strengths(variance, "rank", "stable_strong"), expected, equal_nan=True)


def test_rank_strengths_are_uniform_and_keep_the_minmax_order():
    variance = torch.from_numpy(np.random.default_rng(5).lognormal(0, 2, 1001)).float()  # heavy tailed
    rank = instability_strengths(variance, "rank", "stable_strong")
    minmax = instability_strengths(variance, "minmax", "stable_strong")
    by_variance = torch.argsort(variance)
    assert torch.equal(torch.argsort(rank, descending=True), by_variance)
    assert bool((torch.diff(minmax[by_variance]) <= 0).all())  # same order (float32 may tie near 1)
    assert abs(float(rank.mean()) - 0.5) < 1e-6
    assert float(minmax.median()) > 0.9  # the heavy tail piles min-max strengths near 1


@pytest.mark.parametrize(
    "variance", [torch.full((5,), 2.0), torch.tensor([1.0, math.nan, math.nan]), torch.full((3,), math.nan)]
)
def test_no_information_means_no_strengths(variance):
    assert torch.isnan(instability_strengths(variance, "minmax", "stable_strong")).all()


def test_entropy_strengths_against_numpy():
    logits = np.random.default_rng(6).normal(0, 3, size=(50, 7))
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    expected = 1 - (-(np.exp(log_p) * log_p).sum(1)) / np.log(7)
    visits = torch.ones(50, dtype=torch.int32)
    visits[0] = 0
    got = entropy_strengths(torch.from_numpy(log_p).float(), visits)
    assert math.isnan(got[0])
    np.testing.assert_allclose(got[1:].numpy(), expected[1:], atol=1e-5)


def test_shuffled_strengths_permute_only_defined_values():
    strengths = torch.tensor([0.1, math.nan, 0.5, 0.9, math.nan, 0.3])
    shuffled = shuffled_strengths(strengths, torch.Generator().manual_seed(0))
    assert torch.equal(torch.isnan(shuffled), torch.isnan(strengths))
    assert sorted(shuffled[~torch.isnan(shuffled)].tolist()) == sorted(strengths[~torch.isnan(strengths)].tolist())


def test_random_strengths_are_seeded():
    a = random_strengths(100, torch.Generator().manual_seed(3))
    b = random_strengths(100, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) < 1
