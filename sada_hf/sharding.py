"""Which process keeps which examples: with W processes, example i belongs to process i % W, at local row
i // W. Interleaving balances every shard to within one example whatever N, and makes putting a
per-example vector back together from all processes a transpose."""

from __future__ import annotations

from collections.abc import Callable
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
