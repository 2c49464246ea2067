"""MarginStore: the training-step margins, gold-label probabilities and correctness against a float64
recomputation, one visit per epoch, and sharding that adds up to one store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sada_hf.margins import MarginStore
from sada_hf.sharding import Shard

N, K = 37, 5


def logits_per_epoch(epochs: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(epochs, N, K, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3


def reference(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """AUM and Dataset Cartography's statistics in float64, one example at a time (epochs x N x K)."""
    epochs = logits.shape[0]
    out = {name: np.zeros(N) for name in ("aum", "confidence", "variability", "correctness")}
    for i in range(N):
        z = logits[:, i].numpy()
        y = int(labels[i])
        others = np.delete(z, y, axis=1)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        out["aum"][i] = np.mean(z[:, y] - others.max(1))
        out["confidence"][i] = np.mean(p[:, y])
        out["variability"][i] = np.std(p[:, y])  # over epochs, as the paper's data maps
        out["correctness"][i] = np.mean(z.argmax(1) == y)
    assert epochs > 0
    return out


def feed(store: MarginStore, logits: torch.Tensor, seed: int = 1, batch: int = 8) -> None:
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(logits.shape[0]):
        for rows in torch.randperm(N, generator=generator).split(batch):
            store.update(rows, logits[epoch, rows].float(), epoch)


def test_summary_matches_a_float64_recomputation():
    labels = torch.randint(0, K, (N,), generator=torch.Generator().manual_seed(2))
    logits = logits_per_epoch(6)
    store = MarginStore(labels)
    feed(store, logits)
    summary = store.summary()
    expected = reference(logits.float().double(), labels)  # the store is fed float32 logits
    for name, values in expected.items():
        np.testing.assert_allclose(summary[name].numpy(), values, rtol=0, atol=1e-6, err_msg=name)
    assert torch.equal(summary["visits"], torch.full((N,), 6.0, dtype=torch.float64))
    assert torch.equal(summary["predicted"].long(), logits[-1].float().argmax(1))


def test_one_visit_per_epoch_and_padding_and_non_finite_rows_are_skipped():
    labels = torch.arange(N) % K
    store = MarginStore(labels)
    logits = torch.randn(4, K)
    assert store.update(torch.tensor([3, 3, -1, 5]), logits, epoch=0) == 2  # a repeat and a padding row
    assert store.update(torch.tensor([3]), torch.randn(1, K), epoch=0) == 0  # a second visit in the epoch
    bad = torch.randn(2, K)
    bad[0, 1] = float("nan")
    assert store.update(torch.tensor([7, 8]), bad, epoch=0) == 1
    assert store.visits.tolist() == [1 if i in (3, 5, 8) else 0 for i in range(N)]
    margin = logits[0, 3] - torch.cat([logits[0, :3], logits[0, 4:]]).max()  # label of 3 is 3
    assert float(store.margin_sum[3]) == pytest.approx(float(margin), abs=1e-6)
    assert store.update(torch.tensor([3]), torch.randn(1, K), epoch=1) == 1  # the next epoch counts
    assert torch.isnan(store.summary()["aum"][0])  # never visited


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_together_equal_one_store_and_load_resharded(world_size):
    labels = torch.arange(N) % K
    logits = logits_per_epoch(3, seed=4)
    whole = MarginStore(labels)
    feed(whole, logits)
    parts = [MarginStore(labels, Shard(N, rank, world_size)) for rank in range(world_size)]
    for part in parts:
        feed(part, logits)  # each keeps only the rows it owns
    for part in parts:
        rows = torch.from_numpy(part.shard.indices())
        for name in MarginStore.ROWS:
            assert torch.equal(getattr(part, name), getattr(whole, name)[rows]), name
    # what W processes saved loads into one process, and back into W + 1
    one = MarginStore(labels)
    one.load_shards([(part.shard, part.state_dict) for part in parts])
    for name in MarginStore.ROWS:
        assert torch.equal(getattr(one, name), getattr(whole, name)), name
    other = MarginStore(labels, Shard(N, 1, world_size + 1))
    other.load_shards([(part.shard, part.state_dict) for part in parts])
    assert torch.equal(other.margin_sum, whole.margin_sum[torch.from_numpy(other.shard.indices())])


def test_wrong_saved_rows_are_refused_without_changing_anything():
    labels = torch.arange(N) % K
    store = MarginStore(labels)
    feed(store, logits_per_epoch(2))
    before = {name: t.clone() for name, t in store.state_dict().items()}
    bad = {name: t.clone() for name, t in store.state_dict().items()}
    bad["margin_sum"] = bad["margin_sum"].float()
    with pytest.raises(ValueError, match=r"'margin_sum' has shape \(37,\) and dtype torch.float32"):
        store.load_state_dict(bad)
    for name, tensor in store.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_the_suggested_label_is_the_weighted_majority_vote_of_a_hand_computed_sequence():
    # predictions per epoch of 4 examples (labels 0); the k-th visit weighs k; (candidate, count) after each visit
    predicted = [[1, 2, 0, 1], [1, 0, 0, 2], [2, 0, 1, 0], [1, 0, 2, 1], [2, 1, 2, 2]]
    # ex. 0: (1,1) (1,3) (1,0) (1,4) (2,1) -> 2: weight 3 + 5 = 8 of 15 (class 1 was predicted more often, earlier)
    # ex. 1: (2,1) (0,1) (0,4) (0,8) (0,3) -> 0: 9 of 15; ex. 2: (0,1) (0,3) (0,0) (2,4) (2,9) -> 2: 9 of 15
    # ex. 3: (1,1) (2,1) (0,2) (1,2) (2,3) -> 2: no class has over half (5, 7, 3 of 15), the vote's survivor
    store = MarginStore(torch.zeros(4, dtype=torch.int64))
    for epoch, classes in enumerate(predicted):
        store.update(torch.arange(4), torch.nn.functional.one_hot(torch.tensor(classes), 3).float(), epoch)
    assert store.summary()["suggested"].tolist() == [2.0, 0.0, 2.0, 2.0]
    assert store.vote_count.tolist() == [1, 3, 9, 3]
    store.reset()
    assert store.summary()["suggested"].tolist() == [-1.0] * 4
