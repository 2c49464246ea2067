"""`InfluenceStore`: SADA's per-example influence signal (paper Eq. 5-7), index-aligned and pure tensor math."""

from __future__ import annotations

import torch

from .sharding import RowStore, Shard, new_visits
from .strengths import entropy_strengths

_DTYPES = {"float32": torch.float32, "float16": torch.float16}


class InfluenceStore(RowStore):
    """Per-example influence state for `num_examples` examples and `num_labels` classes, on the CPU: the
    rows of the examples `shard` owns (default: all of them), at local row i // world_size.

    At each visit of example i (at most once per round: an epoch when the training step feeds the store, a
    probe when probes do) with predictive distribution p_v:
    influence d_v = KL(p_v || p_{v-1}) (Eq. 5), window variance V_t = sum_j (|d_j| - mean |d|)^2 over
    the last `window` values (Eq. 6, a sum), and V = decay * V_t + (1 - decay) * V (Eq. 7; the first
    defined V_t initialises V).

    Attributes (R = the number of owned examples, N without sharding):
        log_probs (`torch.Tensor`, R x K, `store_dtype`): log-probabilities of each example's last visit.
        window (`torch.Tensor`, R x L, float32): ring buffer of the last L influence values |d|.
        variance (`torch.Tensor`, R, float32): the EMA V; NaN until an example has 2 influence values.
        visits (`torch.Tensor`, R, int32): stored visits per example.
        last_round (`torch.Tensor`, R, int32): round of the last stored visit (-1: never visited).
        nonfinite_skipped (`int`): rows with non-finite logits that were counted and not stored.
    """

    ROWS = ("log_probs", "window", "variance", "visits", "last_round")
    COUNTERS = ("nonfinite_skipped",)

    def __init__(
        self,
        num_examples: int,
        num_labels: int,
        window: int = 10,
        decay: float = 0.9,
        store_dtype: str = "float32",
        shard: Shard | None = None,
    ) -> None:
        if num_examples < 1:
            raise ValueError(f"`num_examples` must be >= 1, got {num_examples}.")
        if num_labels < 2:
            raise ValueError(
                f"`num_labels` must be >= 2, got {num_labels}: the influence compares class distributions."
            )
        shard = shard if shard is not None else Shard(num_examples)
        if shard.num_examples != num_examples:
            raise ValueError(f"The shard covers {shard.num_examples} examples, the store {num_examples}.")
        super().__init__(shard)
        self.num_examples = num_examples
        self.num_labels = num_labels
        self.window_size = window
        self.decay = decay
        rows = shard.size
        self.log_probs = torch.zeros(rows, num_labels, dtype=_DTYPES[store_dtype])
        self.window = torch.zeros(rows, window, dtype=torch.float32)
        self.variance = torch.full((rows,), float("nan"), dtype=torch.float32)
        self.visits = torch.zeros(rows, dtype=torch.int32)
        self.last_round = torch.full((rows,), -1, dtype=torch.int32)
        self.nonfinite_skipped = 0
        # float16 cannot hold log-probabilities below -65504: clamp, so an extreme but finite logit gap
        # never becomes -inf (whose KL term 0 * inf is NaN, poisoning V for a whole window).
        self._log_prob_floor = torch.finfo(self.log_probs.dtype).min

    def reset(self) -> None:
        """Forget every visit, in place."""
        self.log_probs.zero_()
        self.window.zero_()
        self.variance.fill_(float("nan"))
        self.visits.zero_()
        self.last_round.fill_(-1)
        self.nonfinite_skipped = 0

    def update(self, indices: torch.Tensor, logits: torch.Tensor, round: int) -> int:
        """Record one visit for each row of `logits` (B x K) at dataset positions `indices` (B).

        Negative indices (padding) and examples of other shards are dropped; rows with non-finite logits
        are counted, not stored; an index repeated in the batch or already visited in `round` keeps its
        first visit only. Returns the number of visits stored.
        """
        if logits.shape[-1] != self.num_labels:
            raise ValueError(
                f"Logits have {logits.shape[-1]} classes but the store was built for {self.num_labels}: the "
                "model's num_labels must match the SADA state."
            )
        rows, logits, nonfinite = new_visits(self.shard, self.last_round, indices, logits, round)
        self.nonfinite_skipped += nonfinite
        if rows.numel() == 0:
            return 0
        log_p = torch.log_softmax(logits, dim=1)
        visits = self.visits.index_select(0, rows)
        seen = visits > 0
        if bool(seen.any()):
            positions = seen.nonzero().squeeze(1)
            self._add_influence(rows[positions], log_p[positions], visits[positions].to(torch.int64) - 1)
        self.log_probs.index_copy_(0, rows, log_p.clamp(min=self._log_prob_floor).to(self.log_probs.dtype))
        self.visits.index_copy_(0, rows, visits + 1)
        self.last_round.index_fill_(0, rows, round)
        return int(rows.numel())

    def _add_influence(self, rows: torch.Tensor, log_p: torch.Tensor, recorded: torch.Tensor) -> None:
        """Append |KL(p || stored p)| to each row's window and fold its window variance into V.
        `recorded` is the number of influence values each row had before this visit."""
        log_q = self.log_probs.index_select(0, rows).to(torch.float32)
        influence = (log_p.exp() * (log_p - log_q)).sum(dim=1).abs()

        window = self.window.index_select(0, rows)
        window.scatter_(1, (recorded % self.window_size)[:, None], influence[:, None])
        self.window.index_copy_(0, rows, window)

        count = torch.clamp(recorded + 1, max=self.window_size)
        values = window.to(torch.float64)
        valid = torch.arange(self.window_size) < count[:, None]
        mean = (values * valid).sum(dim=1) / count
        window_variance = (((values - mean[:, None]) ** 2) * valid).sum(dim=1)

        previous = self.variance.index_select(0, rows).to(torch.float64)
        ema = self.decay * window_variance + (1.0 - self.decay) * previous
        updated = torch.where(torch.isnan(previous), window_variance, ema)
        self.variance.index_copy_(0, rows, torch.where(count >= 2, updated, previous).to(torch.float32))

    def last_influence(self, indices: torch.Tensor) -> torch.Tensor:
        """The most recent |d| of each example at `indices`, which this store must own (float32; NaN
        before its second visit)."""
        indices = self.shard.local_rows(indices.reshape(-1).to(torch.int64))
        recorded = self.visits.index_select(0, indices).to(torch.int64) - 1
        slot = (recorded - 1).clamp(min=0) % self.window_size
        values = self.window.index_select(0, indices).gather(1, slot[:, None]).squeeze(1)
        return torch.where(recorded >= 1, values, torch.tensor(float("nan")))

    def certainty(self) -> torch.Tensor:
        """1 - H(p) / log K of each owned example's last prediction (float32; NaN if never visited)."""
        return entropy_strengths(self.log_probs, self.visits)
