"""Which process keeps which examples: with W processes, example i belongs to process i % W, at local row
i // W. Interleaving balances every shard to within one example whatever N, and makes putting a
per-example vector back together from all processes a transpose."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

# All-gather of equal-sized tensors, concatenated along dim 0 in rank order (`accelerator.gather`).
AllGather = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Shard:
    """The examples process `rank` of `world_size` owns among `num_examples`: i with i % world_size == rank."""

    num_examples: int
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"Invalid shard: rank {self.rank} of world size {self.world_size}.")

    @property
    def size(self) -> int:
        """The number of examples this shard owns."""
        return len(range(self.rank, self.num_examples, self.world_size))

    @property
    def max_size(self) -> int:
        """The size of the largest shard (every shard is padded to it for a gather)."""
        return -(-self.num_examples // self.world_size)

    def indices(self) -> np.ndarray:
        """The dataset positions this shard owns, in local-row order."""
        return np.arange(self.rank, self.num_examples, self.world_size, dtype=np.int64)

    def owns(self, indices: torch.Tensor) -> torch.Tensor:
        """Which of the dataset positions `indices` belong to this shard."""
        return indices % self.world_size == self.rank

    def local_rows(self, indices: torch.Tensor) -> torch.Tensor:
        """The local rows of dataset positions `indices`, which this shard must own."""
        if not bool(self.owns(indices).all()):
            raise IndexError(
                f"Rank {self.rank} of {self.world_size} does not own every example asked for: examples belong to "
                "rank index % world_size."
            )
        return indices // self.world_size

    def gather(self, local: torch.Tensor, all_gather: AllGather | None) -> torch.Tensor:
        """The rows of every shard (`local`: this shard's, one per owned example) in dataset order, on every
        process. `all_gather` may be None with a single process."""
        if self.world_size == 1:
            return local.clone()
        if all_gather is None:
            raise ValueError(f"Gathering {self.world_size} shards needs an all-gather function.")
        padded = local.new_zeros((self.max_size, *local.shape[1:]))
        padded[: local.shape[0]] = local
        gathered = all_gather(padded).cpu()
        per_rank = gathered.reshape(self.world_size, self.max_size, *local.shape[1:])
        # row j of rank r is example j * W + r: padding rows land past N and are cut off
        return per_rank.transpose(0, 1).reshape(-1, *local.shape[1:])[: self.num_examples]


def route_to_owners(indices: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All-to-all over the default process group: every process sends each (index, logits) row to the process
    that owns it (index % W) and returns the rows it received, grouped by sending rank, each group in the
    sender's order. Each process receives about 1/W of what an all-gather would bring it."""
    world_size = dist.get_world_size()
    owner = indices % world_size
    order = torch.argsort(owner, stable=True)
    indices, logits = indices[order].contiguous(), logits[order].contiguous()
    send = torch.bincount(owner, minlength=world_size)
    receive = torch.empty_like(send)
    dist.all_to_all_single(receive, send)
    send_sizes, receive_sizes = send.tolist(), receive.tolist()
    got_indices = indices.new_empty(sum(receive_sizes))
    got_logits = logits.new_empty((sum(receive_sizes), logits.shape[1]))
    dist.all_to_all_single(got_indices, indices, receive_sizes, send_sizes)
    dist.all_to_all_single(got_logits, logits, receive_sizes, send_sizes)
    return got_indices, got_logits


def check_tensor(name: str, tensor: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype, where: str) -> None:
    """Raise `ValueError` naming `name`, what it is and what `where` needs, unless it has that shape and dtype."""
    if tuple(tensor.shape) != tuple(shape) or tensor.dtype != dtype:
        raise ValueError(
            f"{where}: tensor {name!r} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}; it needs shape "
            f"{tuple(shape)} and dtype {dtype}."
        )


class RowStore:
    """Per-example tensors kept for the examples a `Shard` owns (one row per owned example, at local row
    i // W), with `state_dict()` / `load_state_dict()` and re-sharding: a state saved by W processes
    loads into any other number (`load_shards`). Subclasses name their row tensors in `ROWS` and their
    integer counters in `COUNTERS` (saved as 0-d int64 tensors; on re-sharding, the total goes to rank 0)."""

    ROWS: tuple[str, ...] = ()
    COUNTERS: tuple[str, ...] = ()

    def __init__(self, shard: Shard) -> None:
        self.shard = shard

    @property
    def nbytes(self) -> int:
        """Bytes held by the row tensors."""
        return sum(getattr(self, name).numel() * getattr(self, name).element_size() for name in self.ROWS)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors that restore these rows exactly (live tensors, not copies)."""
        state = {name: getattr(self, name) for name in self.ROWS}
        state.update({name: torch.tensor(getattr(self, name), dtype=torch.int64) for name in self.COUNTERS})
        return state

    def check_state_dict(self, state: dict[str, torch.Tensor], shard: Shard | None = None) -> None:
        """Raise `ValueError` naming the tensor, its shape and dtype and what is needed, unless `state` can be
        loaded as the rows of `shard` (default: this store's)."""
        rows = (shard or self.shard).size
        missing = sorted(set(self.ROWS + self.COUNTERS) - set(state))
        if missing:
            raise ValueError(f"{type(self).__name__} state lacks {missing}; it has {sorted(state)}.")
        where = f"{type(self).__name__} ({rows} of {self.shard.num_examples} examples)"
        for name in self.ROWS:
            live = getattr(self, name)
            check_tensor(name, state[name], (rows, *live.shape[1:]), live.dtype, where)
        for name in self.COUNTERS:
            check_tensor(name, state[name], (), torch.int64, where)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from `state_dict()` output of a store with the same shard; nothing changes if a check fails."""
        self.assign(self.read_shards([(self.shard, lambda: state)]))

    def load_shards(self, sources: Iterable[tuple[Shard, Callable[[], dict[str, torch.Tensor]]]]) -> None:
        """Restore this store's rows from the saved shards of a store over the same examples (`read_shards`)."""
        self.assign(self.read_shards(sources))

    def read_shards(
        self, sources: Iterable[tuple[Shard, Callable[[], dict[str, torch.Tensor]]]]
    ) -> dict[str, torch.Tensor]:
        """This store's rows, checked and complete, from the saved shards of a store over the same examples,
        possibly sharded over another number of processes. Each source is (its shard, a function reading its
        `state_dict()`), read one at a time. Changes nothing: `assign` the result."""
        sources = list(sources)
        if len(sources) == 1 and sources[0][0] == self.shard:  # the same sharding: no re-sharding copy
            state = sources[0][1]()
            self.check_state_dict(state)
            return state
        restored = {name: getattr(self, name).clone() for name in self.ROWS}
        restored.update({name: torch.tensor(0, dtype=torch.int64) for name in self.COUNTERS})
        covered = torch.zeros(self.shard.size, dtype=torch.bool)
        for shard, read in sources:
            if shard.num_examples != self.shard.num_examples:
                raise ValueError(
                    f"A saved shard covers {shard.num_examples} examples; this store has {self.shard.num_examples}."
                )
            state = read()
            self.check_state_dict(state, shard)
            examples = torch.from_numpy(shard.indices())
            keep = self.shard.owns(examples)
            rows = self.shard.local_rows(examples[keep])
            for name in self.ROWS:
                restored[name].index_copy_(0, rows, state[name][keep])
            for name in self.COUNTERS:  # the total across processes goes to rank 0
                restored[name] += state[name] if self.shard.rank == 0 else 0
            covered[rows] = True
        if not bool(covered.all()):
            raise ValueError(
                f"The saved shards hold {int(covered.sum())} of the {self.shard.size} examples this process owns: "
                "a shard file is missing."
            )
        return restored

    def assign(self, rows: dict[str, torch.Tensor]) -> None:
        """Copy `read_shards` output into this store, in place."""
        for name in self.ROWS:
            getattr(self, name).copy_(rows[name])
        for name in self.COUNTERS:
            setattr(self, name, int(rows[name]))


def select_rows(indices: torch.Tensor, values: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows where `keep` holds (no copy when it holds everywhere, the common case)."""
    if bool(keep.all()):
        return indices, values
    positions = keep.nonzero().squeeze(1)
    return indices.index_select(0, positions), values.index_select(0, positions)


def first_occurrences(indices: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct value in `indices`."""
    unique, inverse = torch.unique(indices, return_inverse=True)
    positions = torch.arange(indices.numel())
    first = torch.full((unique.numel(),), indices.numel(), dtype=torch.int64)
    return first.scatter_reduce(0, inverse, positions, reduce="amin")


def new_visits(
    shard: Shard, last_round: torch.Tensor, indices: torch.Tensor, logits: torch.Tensor, round: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The visits a row store records from a batch of (index, logits) rows: (local rows, their float logits,
    the number of this shard's rows skipped for non-finite logits). Padding (negative indices) and other
    shards' examples are dropped; an index repeated in the batch, or already recorded in `round` (`last_round`
    holds each row's last recorded round), keeps its first visit only."""
    indices = indices.reshape(-1).to(torch.int64)
    logits = logits.reshape(indices.numel(), logits.shape[-1])
    if indices.numel() > 0 and int(indices.max()) >= shard.num_examples:
        raise IndexError(
            f"Index {int(indices.max())} is out of range for a store of {shard.num_examples} examples: the "
            "index column must hold positions 0..N-1 of the training dataset."
        )
    mine = (indices >= 0) & shard.owns(indices)
    finite = torch.isfinite(logits).all(dim=1)
    nonfinite = int((mine & ~finite).sum())
    indices, logits = select_rows(indices, logits, mine & finite)
    if indices.numel() == 0:
        return indices, logits, nonfinite
    rows = shard.local_rows(indices)
    if torch.unique(rows).numel() != rows.numel():
        first = first_occurrences(rows)
        rows, logits = rows[first], logits[first]
    rows, logits = select_rows(rows, logits, last_round.index_select(0, rows) != round)
    return rows, logits.to(torch.float32), nonfinite
