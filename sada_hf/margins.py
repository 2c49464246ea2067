"""`MarginStore`: what the training step already knows about each example, recorded for free from the logits
it computes anyway (no extra forward pass): the gold-label margin, whose mean over visits is the area under
the margin (AUM, Pleiss et al. 2020), the gold-label probability, whose mean and standard deviation over
visits are Dataset Cartography's confidence and variability (Swayamdipta et al. 2020), correctness, and a
majority vote over the predicted classes, later visits weighing more, that suggests a label."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial

import torch

from .sharding import RowStore, Shard, new_visits

# Rows added after checkpoints of format version 4 were first written, with their value before any visit: a
# checkpoint without them (sada_hf 0.4) restarts them there.
_LATER_ROWS = {"vote_class": -1, "vote_count": 0}


class MarginStore(RowStore):
    """Running sums of each example's training-step dynamics, O(1) per example, for the rows `shard` owns.

    At each visit (at most one per epoch: a sampler that repeats an example to even out batches does not
    count it twice) with logits z and gold label y: margin z_y - max_{k != y} z_k, gold probability
    softmax(z)_y and correctness argmax z == y. Rows with non-finite logits are skipped (the influence store
    counts those it is fed; a non-finite training loss is `Trainer`'s to report).

    Attributes (R = the number of owned examples):
        labels (`torch.Tensor`, R, int64): the gold label of each owned example (not saved: the dataset's).
        margin_sum, gold_prob_sum, gold_prob_sq_sum (`torch.Tensor`, R, float64): sums over visits.
        correct (`torch.Tensor`, R, int32): visits whose prediction was the gold label.
        visits (`torch.Tensor`, R, int32): recorded visits.
        last_epoch (`torch.Tensor`, R, int32): epoch of the last recorded visit (-1: never visited).
        predicted (`torch.Tensor`, R, int32): the predicted class at the last visit (-1: never visited).
        vote_class, vote_count (`torch.Tensor`, R, int32): a majority vote over the predicted classes in which
            an example's k-th visit weighs k, so later visits (a better-trained model) count more: Boyer-Moore's
            streaming vote with weights (candidate, count; -1, 0 before the first visit). Its candidate is the
            suggested label: the class with more than half of the weight whenever there is one, else the
            survivor of the vote (a class predicted often, late); O(1) per example, where counting every
            class would cost N x K.
    """

    ROWS = (
        "margin_sum",
        "gold_prob_sum",
        "gold_prob_sq_sum",
        "correct",
        "visits",
        "last_epoch",
        "predicted",
        *_LATER_ROWS,
    )

    def __init__(self, labels: torch.Tensor, shard: Shard | None = None) -> None:
        labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        shard = shard if shard is not None else Shard(labels.numel())
        if shard.num_examples != labels.numel():
            raise ValueError(f"The shard covers {shard.num_examples} examples, the labels {labels.numel()}.")
        super().__init__(shard)
        self.labels = labels[torch.from_numpy(shard.indices())]
        rows = shard.size
        self.margin_sum = torch.zeros(rows, dtype=torch.float64)
        self.gold_prob_sum = torch.zeros(rows, dtype=torch.float64)
        self.gold_prob_sq_sum = torch.zeros(rows, dtype=torch.float64)
        self.correct = torch.zeros(rows, dtype=torch.int32)
        self.visits = torch.zeros(rows, dtype=torch.int32)
        self.last_epoch = torch.full((rows,), -1, dtype=torch.int32)
        self.predicted = torch.full((rows,), -1, dtype=torch.int32)
        self.vote_class = torch.full((rows,), -1, dtype=torch.int32)
        self.vote_count = torch.zeros(rows, dtype=torch.int32)

    def reset(self) -> None:
        """Forget every visit, in place."""
        for name in ("margin_sum", "gold_prob_sum", "gold_prob_sq_sum", "correct", "visits", "vote_count"):
            getattr(self, name).zero_()
        for name in ("last_epoch", "predicted", "vote_class"):
            getattr(self, name).fill_(-1)

    def read_shards(self, sources: Iterable[tuple[Shard, Callable[[], dict]]]) -> dict[str, torch.Tensor]:
        # A checkpoint of sada_hf 0.4 has no vote rows: they start empty, the rest is restored exactly.
        return super().read_shards([(shard, partial(_with_later_rows, read, shard.size)) for shard, read in sources])

    def update(self, indices: torch.Tensor, logits: torch.Tensor, epoch: int) -> int:
        """Record the training-step logits (B x K) of the examples at dataset positions `indices` (B) in
        `epoch`; returns the number of visits recorded (see `new_visits` for what is dropped)."""
        rows, logits, _ = new_visits(self.shard, self.last_epoch, indices, logits, epoch)
        if rows.numel() == 0:
            return 0
        logits = logits.to(torch.float64)
        gold = self.labels.index_select(0, rows)[:, None]
        gold_logit = logits.gather(1, gold).squeeze(1)
        best_other = logits.scatter(1, gold, -math.inf).max(dim=1).values
        gold_prob = torch.softmax(logits, dim=1).gather(1, gold).squeeze(1)
        predicted = logits.argmax(dim=1)
        self.margin_sum.index_add_(0, rows, gold_logit - best_other)
        self.gold_prob_sum.index_add_(0, rows, gold_prob)
        self.gold_prob_sq_sum.index_add_(0, rows, gold_prob * gold_prob)
        self.correct.index_add_(0, rows, (predicted == gold.squeeze(1)).to(torch.int32))
        self.visits.index_add_(0, rows, torch.ones_like(rows, dtype=torch.int32))
        self.last_epoch.index_fill_(0, rows, epoch)
        self.predicted.index_copy_(0, rows, predicted.to(torch.int32))
        self._vote(rows, predicted.to(torch.int32))
        return int(rows.numel())

    def _vote(self, rows: torch.Tensor, predicted: torch.Tensor) -> None:
        """One step of the weighted majority vote per row (each row once), the visit weighing its number w: as
        if w unit votes for `predicted` arrived, each adding one for the candidate it names and removing one
        from another, a new candidate taking over at 0."""
        weight = self.visits.index_select(0, rows)  # already counts this visit
        candidate, count = self.vote_class.index_select(0, rows), self.vote_count.index_select(0, rows)
        agrees, takes_over = candidate == predicted, (candidate != predicted) & (count < weight)
        count = torch.where(agrees, count + weight, torch.where(takes_over, weight - count, count - weight))
        self.vote_class.index_copy_(0, rows, torch.where(takes_over, predicted, candidate))
        self.vote_count.index_copy_(0, rows, count)

    def summary(self) -> dict[str, torch.Tensor]:
        """Per owned example (float64; NaN before its first visit): `aum` (mean margin), `confidence` (mean
        gold probability), `variability` (its standard deviation over visits), `correctness` (share of
        visits right), `visits` and `predicted` as recorded, and `suggested` (the vote's candidate)."""
        visits = self.visits.to(torch.float64)
        seen = visits > 0
        count = torch.where(seen, visits, torch.ones_like(visits))

        def mean(total: torch.Tensor) -> torch.Tensor:
            return torch.where(seen, total / count, torch.full_like(total, math.nan))

        confidence = mean(self.gold_prob_sum)
        spread = (mean(self.gold_prob_sq_sum) - confidence**2).clamp(min=0.0)
        return {
            "aum": mean(self.margin_sum),
            "confidence": confidence,
            "variability": spread.sqrt(),
            "correctness": mean(self.correct.to(torch.float64)),
            "visits": visits,
            "predicted": self.predicted.to(torch.float64),
            "suggested": self.vote_class.to(torch.float64),
        }


def _with_later_rows(read: Callable[[], dict], size: int) -> dict[str, torch.Tensor]:
    """A saved shard's rows, with the rows it predates at their value before any visit."""
    later = {name: torch.full((size,), value, dtype=torch.int32) for name, value in _LATER_ROWS.items()}
    return {**later, **read()}
