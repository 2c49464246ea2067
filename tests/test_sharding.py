"""The sharded store in one process: W ranks simulated by threads that meet at a real all-gather barrier.

Each rank keeps only its own examples' rows; the shards together must equal a one-process store fed the
same logits, every rank must publish the same strengths, and a state saved by W processes must load
(re-sharded) into any other number of processes and continue exactly as the one-process run does.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from test_store import feed_in_shuffled_batches, reference_run

from sada_hf import SADAConfig, SADAState
from sada_hf.persistence import STATE_FILE, shard_file
from sada_hf.sharding import Shard
from sada_hf.store import InfluenceStore

from conftest import example_labels

N, K = 301, 6  # N divisible by neither 2 nor 3


def run_ranks(world_size: int, work) -> list:
    """Run `work(rank, all_gather)` on `world_size` threads; `all_gather` concatenates every rank's tensor in
    rank order, as `accelerator.gather` does."""
    barrier = threading.Barrier(world_size)
    slots: list = [None] * world_size
    results: list = [None] * world_size
    errors: list = []

    def all_gather(tensor: torch.Tensor) -> torch.Tensor:
        rank = threading.current_thread().rank
        slots[rank] = tensor.clone()
        barrier.wait()
        gathered = torch.cat(slots)
        barrier.wait()  # nobody overwrites a slot before everyone has read
        return gathered

    def target(rank: int) -> None:
        threading.current_thread().rank = rank
        try:
            results[rank] = work(rank, all_gather)
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(rank,)) for rank in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def stream(epochs: int, seed: int = 0) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per epoch, the batches (indices, logits) every rank sees after the training step's gather:
    shuffled, with padding rows (-1), a repeated index and a non-finite row."""
    generator = torch.Generator().manual_seed(seed)
    epochs_of_batches = []
    for _ in range(epochs):
        order = torch.randperm(N, generator=generator)
        batches = []
        for batch in order.split(40):
            indices = torch.cat([batch, batch[:1], torch.tensor([-1])])
            logits = torch.randn(len(indices), K, generator=generator) * 3
            batches.append((indices, logits))
        batches[0][1][1, 0] = float("nan")
        epochs_of_batches.append(batches)
    return epochs_of_batches


def train(state: SADAState, epochs_of_batches) -> SADAState:
    for batches in epochs_of_batches:
        state.begin_epoch()
        for indices, logits in batches:
            state.observe(indices, logits)
        state.end_epoch()
    return state


def config(**overrides) -> SADAConfig:
    return SADAConfig(augmentation_seed=3, window=3, normalization="rank", **overrides)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("num_examples", [300, 301, 2])
def test_shards_cover_every_example_once_and_balance(world_size, num_examples):
    shards = [Shard(num_examples, rank, world_size) for rank in range(world_size)]
    parts = [shard.indices() for shard in shards]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(num_examples))
    assert [len(p) for p in parts] == [shard.size for shard in shards]
    assert max(map(len, parts)) - min(map(len, parts)) <= 1 and max(map(len, parts)) == shards[0].max_size
    for shard, part in zip(shards, parts):
        assert torch.equal(shard.local_rows(torch.from_numpy(part)), torch.arange(len(part)))


@pytest.mark.parametrize("world_size", [2, 3])
def test_gather_puts_every_shard_back_in_dataset_order(world_size):
    values = torch.arange(N * 2, dtype=torch.float64).reshape(N, 2)

    def work(rank, all_gather):
        shard = Shard(N, rank, world_size)
        return shard.gather(values[torch.from_numpy(shard.indices())], all_gather)

    for gathered in run_ranks(world_size, work):
        assert torch.equal(gathered, values)


def test_a_shard_refuses_examples_it_does_not_own():
    with pytest.raises(IndexError, match="rank index % world_size"):
        Shard(N, 1, 2).local_rows(torch.tensor([1, 2]))


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_together_equal_one_store_and_the_float64_reference(world_size):
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 1, size=(9, N, K)) * rng.uniform(0.5, 4.0, size=(1, N, 1))
    whole = InfluenceStore(N, K, window=4)
    feed_in_shuffled_batches(whole, logits, batch_size=32)
    _, reference_variance = reference_run(logits, window=4, decay=0.9)
    for rank in range(world_size):
        shard = Shard(N, rank, world_size)
        part = InfluenceStore(N, K, window=4, shard=shard)
        feed_in_shuffled_batches(part, logits, batch_size=32)  # every row offered, the shard keeps its own
        rows = torch.from_numpy(shard.indices())
        for name, tensor in part.state_dict().items():
            expected = whole.state_dict()[name]
            expected = expected if name == "nonfinite_skipped" else expected[rows]
            torch.testing.assert_close(tensor, expected, rtol=0, atol=0, equal_nan=True)
        np.testing.assert_allclose(part.variance.numpy(), reference_variance[shard.indices()], rtol=1e-4)
        assert part.log_probs.shape == (shard.size, K) and part.nbytes < whole.nbytes


@pytest.mark.parametrize("strategy", ["sada", "sada_shuffled", "entropy"])
@pytest.mark.parametrize("world_size", [2, 3])
def test_every_rank_publishes_what_one_process_publishes(strategy, world_size):
    batches = stream(epochs=5)
    single = train(SADAState(example_labels(N, K), K, config(strategy=strategy)), batches)

    def work(rank, all_gather):
        return train(
            SADAState(example_labels(N, K), K, config(strategy=strategy), Shard(N, rank, world_size), all_gather),
            batches,
        )

    for state in run_ranks(world_size, work):
        torch.testing.assert_close(state.strengths, single.strengths, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(state.variance, single.variance, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(state.visits, single.visits) and state.history == single.history
    assert [h.nonfinite_skipped for h in single.history] == [1] * 5  # counted once across the ranks
    # once per epoch (repeats and padding dropped), but for the one non-finite row of each epoch
    assert int(single.visits.max()) == 5 and int(single.visits.sum()) == 5 * N - 5


@pytest.mark.parametrize(("saved_by", "loaded_by"), [(2, 2), (2, 3), (3, 2), (2, 1), (1, 3)])
def test_resume_with_any_number_of_processes_continues_like_one_process(tmp_path, saved_by, loaded_by):
    batches = stream(epochs=6)
    single = train(SADAState(example_labels(N, K), K, config()), batches)

    def save(rank, all_gather):
        state = train(SADAState(example_labels(N, K), K, config(), Shard(N, rank, saved_by), all_gather), batches[:3])
        state.save(tmp_path, write_shared=rank == 0)

    run_ranks(saved_by, save)
    assert (tmp_path / STATE_FILE).is_file()
    assert (tmp_path / shard_file(saved_by - 1, saved_by)).is_file() == (saved_by > 1)

    def resume(rank, all_gather):
        state = SADAState(example_labels(N, K), K, config(), Shard(N, rank, loaded_by), all_gather)
        state.load(tmp_path)
        assert state.resharded_from == (saved_by if saved_by != loaded_by else None)
        return train(state, batches[3:])

    for state in run_ranks(loaded_by, resume):
        rows = torch.from_numpy(state.shard.indices())
        for name, tensor in state.store.state_dict().items():
            expected = single.store.state_dict()[name]
            if name != "nonfinite_skipped":
                torch.testing.assert_close(tensor, expected[rows], rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(state.strengths, single.strengths, rtol=0, atol=0, equal_nan=True)
        assert state.history == single.history


def test_a_missing_shard_is_named_and_nothing_changes(tmp_path):
    batches = stream(epochs=3)

    def save(rank, all_gather):
        train(SADAState(example_labels(N, K), K, config(), Shard(N, rank, 2), all_gather), batches).save(
            tmp_path, rank == 0
        )

    run_ranks(2, save)
    (tmp_path / shard_file(1, 2)).unlink()
    state = SADAState(example_labels(N, K), K, config(), Shard(N, 0, 3), all_gather=lambda t: t)
    with pytest.raises(ValueError, match=r"saved by 2 processes, but the shard of rank 1 .*rank-00001-of-00002"):
        state.load(tmp_path)
    assert int(state.visits.sum()) == 0 and int(state.store.visits.sum()) == 0


def _route_worker(rank: int, world_size: int, port: int, results) -> None:
    import torch.distributed as dist

    from sada_hf.sharding import route_to_owners

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    generator = torch.Generator().manual_seed(rank)
    indices = torch.randint(0, N, (17 + rank * 5,), generator=generator)  # uneven batch sizes, repeats
    logits = torch.stack([indices.double(), torch.full_like(indices, rank).double()], dim=1)
    got_indices, got_logits = route_to_owners(indices, logits)
    # numpy arrays travel by value: a tensor on the queue is shared through this process, which may be gone
    results.put((rank, indices.numpy(), got_indices.numpy(), got_logits.numpy()))
    dist.destroy_process_group()


@pytest.mark.parametrize("world_size", [2, 3])
def test_route_to_owners_delivers_every_row_to_its_owner_once(world_size):
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.Queue()
    port = 29700 + world_size
    processes = [context.Process(target=_route_worker, args=(r, world_size, port, results)) for r in range(world_size)]
    for process in processes:
        process.start()
    outputs = sorted((results.get(timeout=120) for _ in processes), key=lambda output: output[0])
    outputs = [(rank, *(torch.from_numpy(array) for array in arrays)) for rank, *arrays in outputs]
    for process in processes:
        process.join()
    sent = {rank: indices for rank, indices, _, _ in outputs}
    for rank, _, got_indices, got_logits in outputs:
        assert bool((got_indices % world_size == rank).all())  # only rows it owns
        assert torch.equal(got_logits[:, 0].long(), got_indices)  # each row's logits travel with its index
        senders = got_logits[:, 1].long()
        assert bool((torch.diff(senders) >= 0).all())  # grouped by sending rank
        for sender, indices in sent.items():  # every row the sender had for this owner, in the sender's order
            assert torch.equal(got_indices[senders == sender], indices[indices % world_size == rank])
