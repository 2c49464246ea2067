"""Per-example strengths: from SADA's variance, from the comparison baselines, and the shared table
that dataloader workers read them from. NaN means "no strength yet": the transform then applies the
warm-up behaviour."""

from __future__ import annotations

import math
import time

import torch
import torch.utils.data

from .sharding import check_tensor

NORMALIZATIONS = ("minmax", "rank")
DIRECTIONS = ("stable_strong", "unstable_strong")


def instability_strengths(instability: torch.Tensor, normalization: str, direction: str) -> torch.Tensor:
    """Strengths in [0, 1] from a per-example instability (SADA's variance V; minus the AUM for the margin
    strategy), NaN where it is undefined or all values are equal.

    'minmax' is the paper's (x - min) / (max - min); 'rank' is rank(x) / (n - 1) with ties sharing
    their mean rank. With direction 'stable_strong' (the paper) the strength is 1 minus that value.
    """
    strengths = torch.full(instability.shape, math.nan, dtype=torch.float32)
    defined = ~torch.isnan(instability)
    values = instability[defined].to(torch.float64)
    if values.numel() < 2 or bool(values.max() == values.min()):
        return strengths
    if normalization == "minmax":
        normalized = (values - values.min()) / (values.max() - values.min())
    elif normalization == "rank":
        normalized = average_ranks(values) / (values.numel() - 1)
    else:
        raise ValueError(f"Unknown normalization {normalization!r}; use one of {list(NORMALIZATIONS)}.")
    if direction == "stable_strong":
        normalized = 1.0 - normalized
    elif direction != "unstable_strong":
        raise ValueError(f"Unknown direction {direction!r}; use one of {list(DIRECTIONS)}.")
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


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """0-based ranks of `values`, ties sharing the mean of their ranks."""
    ordered, order = torch.sort(values)
    _, group, counts = torch.unique_consecutive(ordered, return_inverse=True, return_counts=True)
    group_start = torch.cumsum(counts, 0) - counts
    mean_rank = group_start.to(torch.float64) + (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = mean_rank[group]
    return ranks


# What `StrengthSchedule.label_overrides` holds for an example trained on its label as given, and for one
# whose loss does not count (the ignore index of Hugging Face models' cross-entropy).
KEEP_LABEL = -1
DROP_LABEL = -100


_ADDED_IN_0_5 = ("label_overrides", "previous_label_overrides")


class StrengthSchedule:
    """The current epoch, per-example strengths and training-label overrides, in shared CPU memory.

    The tensors are updated in place and never rebound, so dataloader workers (forked, spawned,
    persistent or not) always read the values published last. Copies of a schedule are the same
    schedule: `datasets` deep-copies transforms (`with_transform`), and a copy must still see updates.

    Strengths published in the middle of an epoch (by a probe) must reach exactly the visits after it,
    whatever the number of workers, however far ahead they prefetch, and on resume: the trainer writes,
    at each epoch start, which publication each example's visit needs (`visit_publication`); a worker
    ahead of the training loop waits for it, and a batch built just after it (the loader's look-ahead,
    or a resumed run) reads the previous table, which is kept.

    A schedule built with no examples is unbound (a transform no trainer has bound): every lookup is
    NaN, i.e. the warm-up behaviour.

    Attributes:
        epoch (`torch.Tensor`, int64 scalar): the epoch being trained.
        strengths (`torch.Tensor`, N, float32): the strength of each example; NaN: warm-up.
        previous (`torch.Tensor`, N, float32): the strengths of the publication before.
        publications (`torch.Tensor`, int64 scalar): how many times strengths were published.
        visit_publication (`torch.Tensor`, N, int64): the publication each example's visit in this epoch
            must see (0 everywhere unless strengths are published within epochs).
        label_overrides (`torch.Tensor`, N, int32): the label each example is trained on, published with
            the strengths: `KEEP_LABEL` (the dataset's), `DROP_LABEL` (its loss does not count) or a class.
        previous_label_overrides (`torch.Tensor`, N, int32): those of the publication before.
    """

    def __init__(self, num_examples: int = 0) -> None:
        self.epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.strengths = torch.full((num_examples,), math.nan, dtype=torch.float32).share_memory_()
        self.previous = self.strengths.clone().share_memory_()
        self.publications = torch.zeros((), dtype=torch.int64).share_memory_()
        self.visit_publication = torch.zeros((num_examples,), dtype=torch.int64).share_memory_()
        self.label_overrides = torch.full((num_examples,), KEEP_LABEL, dtype=torch.int32).share_memory_()
        self.previous_label_overrides = self.label_overrides.clone().share_memory_()

    def __deepcopy__(self, memo: dict) -> StrengthSchedule:
        return self

    @property
    def bound(self) -> bool:
        return self.strengths.numel() > 0

    def publish(self, strengths: torch.Tensor, label_overrides: torch.Tensor | None = None) -> None:
        """Make `strengths` (and `label_overrides`, if given; else the current ones stay) the ones every
        worker reads from now on (one more publication)."""
        self.previous.copy_(self.strengths)
        self.strengths.copy_(strengths)
        self.previous_label_overrides.copy_(self.label_overrides)
        if label_overrides is not None:
            self.label_overrides.copy_(label_overrides)
        self.publications += 1

    def reset(self, strengths: torch.Tensor, epoch: int = 0) -> None:
        """Start over: `strengths` at publication 0 of `epoch`."""
        self.strengths.copy_(strengths)
        self.previous.copy_(strengths)
        self.label_overrides.fill_(KEEP_LABEL)
        self.previous_label_overrides.fill_(KEEP_LABEL)
        self.publications.zero_()
        self.visit_publication.zero_()
        self.epoch.fill_(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch.fill_(epoch)

    def lookup(self, indices: list[int], timeout: float = 600.0) -> list[float]:
        """The strength of each example in `indices` for its visit in this epoch (NaN: warm-up)."""
        return self.lookup_visits(indices, timeout)[0]

    def lookup_visits(self, indices: list[int], timeout: float = 600.0) -> tuple[list[float], list[int]]:
        """The strength and the label override of each example in `indices` for its visit in this epoch,
        both from the same publication.

        A dataloader worker ahead of the training loop waits until the publication its visits need
        is made; the main process never waits (it would wait for itself) and raises instead.
        """
        if not self.bound:
            return [math.nan] * len(indices), [KEEP_LABEL] * len(indices)
        needed = int(self.visit_publication[indices].max()) if indices else 0
        if int(self.publications) < needed:
            self._wait_for(needed, timeout)
        lag = int(self.publications) - needed
        if lag > 1 and needed > 0:
            raise RuntimeError(
                f"A visit needs strength publication {needed}, but {int(self.publications)} were made and only the "
                "last two are kept. This is a bug in sada_hf's probe schedule; please report it."
            )
        previous = lag == 1 and needed > 0
        strengths = (self.previous if previous else self.strengths).numpy()
        overrides = (self.previous_label_overrides if previous else self.label_overrides).numpy()
        return [float(strengths[i]) for i in indices], [int(overrides[i]) for i in indices]

    def _wait_for(self, publication: int, timeout: float) -> None:
        if torch.utils.data.get_worker_info() is None:
            raise RuntimeError(
                f"A visit needs strength publication {publication}, but only {int(self.publications)} were made, and "
                "this is the main process: the batch was built before the probe it depends on. This is a bug in "
                "sada_hf's probe schedule; please report it."
            )
        deadline = time.monotonic() + timeout
        while int(self.publications) < publication:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"A dataloader worker waited {timeout:.0f} s for strength publication {publication} (made: "
                    f"{int(self.publications)}): the training loop stopped before the probe that publishes it."
                )
            time.sleep(0.002)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "epoch": self.epoch,
            "strengths": self.strengths,
            "previous": self.previous,
            "publications": self.publications,
            "label_overrides": self.label_overrides,
            "previous_label_overrides": self.previous_label_overrides,
        }

    def check_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Raise `KeyError` or `ValueError` unless `state` can be loaded (states from sada_hf < 0.5 have no
        label overrides: every label is kept)."""
        for name, tensor in self.state_dict().items():
            if name in state or name not in _ADDED_IN_0_5:
                check_tensor(name, state[name], tuple(tensor.shape), tensor.dtype, "Strength schedule")

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore in place (the tensors workers hold stay the same), after checking every tensor."""
        self.check_state_dict(state)
        for name, tensor in self.state_dict().items():
            if name in state:
                tensor.copy_(state[name])
            else:
                tensor.fill_(KEEP_LABEL)
        self.visit_publication.zero_()
