"""Per-example strengths: from SADA's variance, from the comparison baselines, and the shared table
that dataloader workers read them from. NaN means "no strength yet": the transform then applies the
warm-up behaviour."""

from __future__ import annotations

import math

import torch


def variance_strengths(variance: torch.Tensor, normalization: str, direction: str) -> torch.Tensor:
    """Strengths in [0, 1] from the EMA variance V, NaN where V is undefined or all V are equal.

    'minmax' is the paper's (V - min) / (max - min); 'rank' is rank(V) / (n - 1) with ties sharing
    their mean rank. With direction 'stable_strong' (the paper) the strength is 1 minus that value.
    """
    strengths = torch.full(variance.shape, math.nan, dtype=torch.float32)
    defined = ~torch.isnan(variance)
    values = variance[defined].to(torch.float64)
    if values.numel() < 2 or bool(values.max() == values.min()):
        return strengths
    if normalization == "minmax":
        normalized = (values - values.min()) / (values.max() - values.min())
    elif normalization == "rank":
        normalized = _average_ranks(values) / (values.numel() - 1)
    else:
        raise ValueError(f"Unknown normalization {normalization!r}; use 'minmax' or 'rank'.")
    if direction == "stable_strong":
        normalized = 1.0 - normalized
    elif direction != "unstable_strong":
        raise ValueError(f"Unknown direction {direction!r}; use 'stable_strong' or 'unstable_strong'.")
    strengths[defined] = normalized.to(torch.float32)
    return strengths


def entropy_strengths(log_probs: torch.Tensor, visits: torch.Tensor) -> torch.Tensor:
    """EntAugment-style strengths 1 - H(p) / log K of each example's last prediction (NaN if never seen)."""
    log_p = log_probs.to(torch.float32)
    entropy = -(log_p.exp() * log_p).nan_to_num().sum(dim=1)
    strengths = (1.0 - entropy / math.log(log_probs.shape[1])).clamp(0.0, 1.0)
    return torch.where(visits > 0, strengths, torch.tensor(math.nan))


def shuffled_strengths(strengths: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The defined strengths permuted across the examples that have one (a control: same amounts,
    assignment destroyed)."""
    shuffled = strengths.clone()
    defined = torch.nonzero(~torch.isnan(strengths)).squeeze(1)
    permutation = torch.randperm(defined.numel(), generator=generator)
    shuffled[defined] = strengths[defined[permutation]]
    return shuffled


def random_strengths(num_examples: int, generator: torch.Generator) -> torch.Tensor:
    """One uniform strength in [0, 1) per example."""
    return torch.rand(num_examples, generator=generator, dtype=torch.float32)


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """0-based ranks of `values`, ties sharing the mean of their ranks."""
    ordered, order = torch.sort(values)
    _, group, counts = torch.unique_consecutive(ordered, return_inverse=True, return_counts=True)
    group_start = torch.cumsum(counts, 0) - counts
    mean_rank = group_start.to(torch.float64) + (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = mean_rank[group]
    return ranks


class StrengthSchedule:
    """The current epoch and per-example strengths, in shared CPU memory.

    The tensors are updated in place and never rebound, so dataloader workers (forked, spawned,
    persistent or not) always read the values published last. Copies of a schedule are the same
    schedule: `datasets` deep-copies transforms (`with_transform`), and a copy must still see updates.

    Attributes:
        epoch (`torch.Tensor`, int64 scalar): the epoch being trained.
        strengths (`torch.Tensor`, N, float32): strength of each example for this epoch; NaN: warm-up.
    """

    def __init__(self, num_examples: int = 0) -> None:
        self.epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.strengths = torch.full((num_examples,), math.nan, dtype=torch.float32).share_memory_()

    def __deepcopy__(self, memo: dict) -> StrengthSchedule:
        return self

    def publish(self, strengths: torch.Tensor) -> None:
        """Make `strengths` the ones every worker reads from now on."""
        self.strengths.copy_(strengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch.fill_(epoch)

    def lookup(self, indices: list[int]) -> list[float]:
        """The published strength of each example in `indices`; NaN where it has none (or is outside
        the table, as for a transform that no trainer has bound)."""
        table = self.strengths.numpy()
        size = table.shape[0]
        return [float(table[i]) if 0 <= i < size else math.nan for i in indices]
