"""InfluenceStore against an independent float64 NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sada_hf.store import InfluenceStore


def reference_run(logits: np.ndarray, window: int, decay: float):
    """Paper Eq. 5-7 in float64, one example at a time. `logits` is visits x N x K.
    Returns (last influence |d| per example, V per example (NaN if undefined))."""
    visits, n, _ = logits.shape
    last_influence = np.full(n, np.nan)
    variance = np.full(n, np.nan)
    for i in range(n):
        previous, history = None, []
        for v in range(visits):
            z = logits[v, i].astype(np.float64)
            log_p = z - z.max() - np.log(np.exp(z - z.max()).sum())
            if previous is not None:
                d = float(np.sum(np.exp(log_p) * (log_p - previous)))
                history.append(abs(d))
                last_influence[i] = abs(d)
                recent = np.array(history[-window:])
                if len(recent) >= 2:
                    v_t = float(np.sum((recent - recent.mean()) ** 2))  # a sum, not a mean
                    variance[i] = v_t if np.isnan(variance[i]) else decay * v_t + (1 - decay) * variance[i]
            previous = log_p
    return last_influence, variance


def feed_in_shuffled_batches(store: InfluenceStore, logits: np.ndarray, batch_size: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for epoch in range(logits.shape[0]):
        order = rng.permutation(logits.shape[1])
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            store.update(torch.from_numpy(rows), torch.from_numpy(logits[epoch, rows]).float(), epoch)


@pytest.mark.parametrize("window", [5, 10])
def test_store_matches_float64_reference_over_wrapping_windows(window):
    rng = np.random.default_rng(1)
    visits, n, k = 14, 200, 10  # 13 influence values: the window wraps for both sizes
    scales = rng.uniform(0.5, 4.0, size=(1, n, 1))  # examples of different confidence
    logits = rng.normal(0, 1, size=(visits, n, k)) * scales
    store = InfluenceStore(n, k, window=window, decay=0.9)
    feed_in_shuffled_batches(store, logits, batch_size=32)

    last_influence, variance = reference_run(logits, window, 0.9)
    assert torch.equal(store.visits, torch.full((n,), visits, dtype=torch.int32))
    newest_slot = (visits - 2) % window
    np.testing.assert_allclose(store.window[:, newest_slot].numpy(), last_influence, rtol=1e-5)
    np.testing.assert_allclose(store.variance.numpy(), variance, rtol=1e-4)


@pytest.mark.parametrize("store_dtype, tolerance", [("float32", 1e-5), ("float16", 2e-3)])
def test_kl_from_the_stored_distribution_stays_close_to_float64(store_dtype, tolerance):
    rng = np.random.default_rng(2)
    n, k = 500, 100
    logits = rng.normal(0, 2.0, size=(2, n, k))
    store = InfluenceStore(n, k, window=10, store_dtype=store_dtype)
    feed_in_shuffled_batches(store, logits, batch_size=64)
    last_influence, _ = reference_run(logits, 10, 0.9)
    relative = np.abs(store.window[:, 0].numpy() - last_influence) / last_influence
    assert relative.max() <= tolerance, f"{store_dtype}: max relative KL error {relative.max():.2e}"


def test_variance_is_undefined_before_two_influence_values():
    store = InfluenceStore(3, 4, window=10)
    rng = np.random.default_rng(3)
    for epoch in range(2):  # 2 visits: 1 influence value
        store.update(torch.arange(3), torch.from_numpy(rng.normal(size=(3, 4))).float(), epoch)
    assert torch.isnan(store.variance).all()
    store.update(torch.arange(3), torch.from_numpy(rng.normal(size=(3, 4))).float(), 2)
    assert not torch.isnan(store.variance).any()


def test_second_visit_in_an_epoch_and_repeats_in_a_batch_are_ignored():
    rng = np.random.default_rng(4)
    n, k = 20, 5
    logits = rng.normal(size=(6, n, k))
    clean = InfluenceStore(n, k, window=5)
    feed_in_shuffled_batches(clean, logits, batch_size=8)

    noisy = InfluenceStore(n, k, window=5)
    for epoch in range(logits.shape[0]):
        rows = np.arange(n)
        noisy.update(torch.from_numpy(rows), torch.from_numpy(logits[epoch]).float(), epoch)
        # distributed padding repeats examples: later in the epoch, and inside one gathered batch
        repeats = np.array([0, 3, 3, 7])
        noisy.update(torch.from_numpy(repeats), torch.from_numpy(rng.normal(size=(4, k))).float(), epoch)
    for name in ("log_probs", "window", "variance", "visits", "last_round"):
        assert torch.equal(getattr(noisy, name), getattr(clean, name)), name

    batch = InfluenceStore(n, k, window=5)
    stored = batch.update(torch.tensor([2, 2]), torch.from_numpy(logits[0, [2, 5]]).float(), 0)
    assert stored == 1
    expected = torch.log_softmax(torch.from_numpy(logits[0, 2]).float(), 0)
    assert torch.allclose(batch.log_probs[2], expected)  # the first occurrence wins


def test_non_finite_logits_and_padding_are_never_stored():
    store = InfluenceStore(4, 3, window=5)
    store.update(torch.arange(4), torch.zeros(4, 3), 0)
    before = {name: t.clone() for name, t in store.state_dict().items()}
    logits = torch.tensor([[1.0, 2.0, 3.0], [float("nan"), 0.0, 0.0], [float("inf"), 0.0, 0.0], [0.0, 1.0, 0.0]])
    stored = store.update(torch.tensor([0, 1, 2, -1]), logits, 1)
    assert stored == 1  # only row 0: rows 1-2 are non-finite, the last is padding
    assert store.nonfinite_skipped == 2
    for name in ("log_probs", "visits", "last_round"):
        assert torch.equal(getattr(store, name)[1:], before[name][1:]), name
    assert torch.isfinite(store.log_probs).all()


def test_wrong_class_count_and_out_of_range_index_raise():
    store = InfluenceStore(4, 3)
    with pytest.raises(ValueError, match="3"):
        store.update(torch.arange(2), torch.zeros(2, 5), 0)
    with pytest.raises(IndexError, match="0..N-1"):
        store.update(torch.tensor([4]), torch.zeros(1, 3), 0)


def test_load_state_dict_refuses_wrong_shapes_without_changing_anything():
    store = InfluenceStore(4, 3, window=5)
    store.update(torch.arange(4), torch.randn(4, 3), 0)
    before = {name: t.clone() for name, t in store.state_dict().items()}
    bad = {name: t.clone() for name, t in store.state_dict().items()}
    bad["window"] = torch.zeros(4, 6)
    with pytest.raises(ValueError, match="window"):
        store.load_state_dict(bad)
    bad = {name: t.clone() for name, t in store.state_dict().items()}
    bad["visits"] = bad["visits"].to(torch.int64)
    with pytest.raises(ValueError, match="dtype"):
        store.load_state_dict(bad)
    for name, tensor in store.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0, equal_nan=True)
