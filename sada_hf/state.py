"""`SADAState`: everything SADA keeps for a training run, and how strengths are published from it.

No Hugging Face imports: the trainer calls `begin_epoch` / `end_epoch` at the training loop's epoch
boundaries (when, `Timeline` says), `observe` with training-step logits, `observe_probe` + `end_probe`
with probe logits, and `save` / `load` with checkpoints (the file format lives in `persistence.py`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from .config import SADAConfig
from .margins import MarginStore
from .persistence import (
    STATE_FILE,
    SUMMARY_FILE,
    SUMMARY_METADATA,
    State,
    read_state,
    write_config,
    write_parquet,
    write_state,
)
from .sharding import AllGather, Shard, check_tensor
from .store import InfluenceStore
from .strategies import STRATEGIES, Examples
from .strengths import KEEP_LABEL, StrengthSchedule, average_ranks
from .timeline import Timeline

HISTOGRAM_BINS = 20
# Config fields that change what is stored: a state saved with other values cannot be restored.
_STRUCTURAL_FIELDS = ("window", "store_dtype", "influence")
# Decides, from the training-step statistics (`training_dynamics` and `label`), each example's label override.
DecideLabels = Callable[[dict[str, np.ndarray]], np.ndarray]
# The N-long training-step dynamics every process holds (`MarginStore.summary`, gathered), with their dtypes.
_DYNAMICS = {
    "aum": torch.float32,
    "confidence": torch.float32,
    "variability": torch.float32,
    "correctness": torch.float32,
    "visits": torch.int32,
    "predicted": torch.int32,
    "suggested": torch.int32,
}
# Of those, the ones a checkpoint of sada_hf 0.4 lacks, with their value before any visit.
_LATER_DYNAMICS = {"suggested": -1}


@dataclass
class StrengthStatistics:
    """The strengths published once (at an epoch end, or after a probe), as logged and shown on the card."""

    publication: int
    epoch: float  # training progress, in epochs, when published
    warmup_fraction: float  # share of examples without a strength (their visits get the warm-up strength)
    expected_strength: float  # mean strength of a visit, warm-up visits included
    nonfinite_skipped: int  # rows with non-finite logits skipped since the previous publication
    variance_defined: int  # examples with a V
    strength_mean: float | None = None
    strength_std: float | None = None
    strength_q25: float | None = None
    strength_median: float | None = None
    strength_q75: float | None = None
    # mean strength of the examples whose last training step predicted their label, and of the others
    strength_mean_right: float | None = None
    strength_mean_wrong: float | None = None
    # Spearman correlation with the strengths of the publication before (1: the same assignment)
    rank_correlation: float | None = None
    histogram: list[int] = field(default_factory=list)  # HISTOGRAM_BINS bins over [0, 1]

    def scalars(self) -> dict[str, float]:
        """What goes to the logs (`sada/<name>`): every defined number but the histogram."""
        return {k: v for k, v in asdict(self).items() if isinstance(v, (int, float)) and k != "publication"}


class SADAState:
    """SADA's state for one run over training examples with `labels` (N) among `num_labels` classes.

    With W processes, each keeps the store rows of the examples its `shard` owns (i % W == rank) and
    every process holds the N-long vectors (strengths, V, visits, training-step dynamics), made identical
    at each publication and epoch end by `all_gather` (`accelerator.gather`; not needed with one process).

    Attributes:
        config (`SADAConfig`): the configuration, with a concrete `augmentation_seed`.
        labels (`torch.Tensor`, N, int64): the gold label of every example.
        store (`InfluenceStore`): the influence signal of this process's examples (paper Eq. 5-7).
        margins (`MarginStore`): the training-step margins of this process's examples (free, every mode).
        schedule (`StrengthSchedule`): epoch and strengths in shared memory, read by `SADATransform`.
        timeline (`Timeline`): epochs and probes so far, and the probe schedule.
        resharded_from (`int` or `None`): the number of processes of the state `load` re-sharded, if any.
        margins_missing_on_load (`bool`): `load` read a state from before margins were recorded (sada_hf < 0.4).
        history (`list[StrengthStatistics]`): one entry per publication.
        label_issue_epoch (`int`): with `decide_labels` (the label-issue action), the epochs to complete
            before each publication also publishes the label each example is trained on.
        identity (`dict[str, np.ndarray]`): columns naming each example in the user's dataset (`row`, and `id`
            where there is one; `identity.example_identity`), written into the summary; not saved in
            checkpoints (they are the dataset's).
    """

    def __init__(
        self,
        labels: torch.Tensor,
        num_labels: int,
        config: SADAConfig,
        shard: Shard | None = None,
        all_gather: AllGather | None = None,
        timeline: Timeline | None = None,
        identity: dict[str, np.ndarray] | None = None,
        decide_labels: DecideLabels | None = None,
    ) -> None:
        if config.augmentation_seed is None:
            raise ValueError(
                "SADAState needs a config with a concrete `augmentation_seed` (SADATrainer fills it from args.seed)."
            )
        self.config = config
        self.strategy = STRATEGIES[config.strategy]
        self.labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        num_examples = self.labels.numel()
        self.identity = dict(identity or {})
        for name, values in self.identity.items():
            if len(values) != num_examples:
                raise ValueError(f"The identity column {name!r} has {len(values)} values for {num_examples} examples.")
        self.store = InfluenceStore(
            num_examples, num_labels, config.window, config.decay, config.store_dtype, shard=shard
        )
        self.margins = MarginStore(self.labels, shard=self.store.shard)
        self._all_gather = all_gather
        self._decide_labels = decide_labels
        self.label_issue_epoch = 0
        self.schedule = StrengthSchedule(num_examples)
        self.timeline = timeline if timeline is not None else Timeline(config.probe_every if self.uses_probe else None)
        # What every process holds, as of the last publication or epoch end.
        self._variance = torch.full((num_examples,), math.nan, dtype=torch.float32)
        self._visits = torch.zeros(num_examples, dtype=torch.int32)
        self._dynamics = {name: torch.zeros(num_examples, dtype=dtype) for name, dtype in _DYNAMICS.items()}
        self.reset()

    # ---- what it holds -----------------------------------------------------------------------

    @property
    def shard(self) -> Shard:
        """Which examples this process keeps store rows for (i % W == rank)."""
        return self.store.shard

    @property
    def shared_nbytes(self) -> int:
        """Bytes of the N-long vectors every process holds (strength and label tables, V, visits, dynamics)."""
        schedule = self.schedule
        tensors = [schedule.strengths, schedule.previous, schedule.visit_publication, self._variance, self._visits]
        tensors += [schedule.label_overrides, schedule.previous_label_overrides]
        return sum(t.numel() * t.element_size() for t in tensors + list(self._dynamics.values()))

    @property
    def num_examples(self) -> int:
        """N, the number of training examples."""
        return self.store.num_examples

    @property
    def num_labels(self) -> int:
        """K, the number of classes."""
        return self.store.num_labels

    @property
    def strengths(self) -> torch.Tensor:
        """Strength of each example (float32; NaN while in warm-up)."""
        return self.schedule.strengths.clone()

    @property
    def variance(self) -> torch.Tensor:
        """The EMA variance V of each example at the last publication (float32; NaN where undefined)."""
        return self._variance.clone()

    @property
    def visits(self) -> torch.Tensor:
        """Stored visits (training steps or probes) of each example at the last publication (int32)."""
        return self._visits.clone()

    @property
    def training_dynamics(self) -> dict[str, np.ndarray]:
        """Per example, from the training steps up to the last epoch end or publication: `aum` (mean
        gold-label margin), `confidence` (mean gold-label probability), `variability` (its standard
        deviation), `correctness` (share of visits right; NaN before the first visit for all four),
        `step_visits`, `predicted` (the class predicted at the last visit) and `suggested` (the class its visits
        predicted most, later ones weighing more: `MarginStore`'s vote; -1 before the first visit for both)."""
        dynamics = {name: tensor.numpy().copy() for name, tensor in self._dynamics.items()}
        dynamics["step_visits"] = dynamics.pop("visits")
        return dynamics

    @property
    def training_labels(self) -> torch.Tensor:
        """The label each example is trained on as of the last publication: its own, another class
        (relabelled) or -100 (dropped; see `SADAConfig.label_issue_action`)."""
        overrides = self.schedule.label_overrides
        return torch.where(overrides == KEEP_LABEL, self.labels, overrides.to(torch.int64))

    @property
    def epoch(self) -> int:
        """The training-loop epoch being trained (0-based; it keys the augmentation draws)."""
        return int(self.schedule.epoch)

    @property
    def epochs_completed(self) -> int:
        """Training-loop epochs closed so far."""
        return self.timeline.counters.epochs_completed

    @property
    def epoch_open(self) -> bool:
        """Whether an epoch has begun and not yet ended."""
        return self.timeline.counters.epoch_open

    @property
    def probes_completed(self) -> int:
        """Probes closed so far (0 with training-step influence)."""
        return self.timeline.counters.probes_completed

    @property
    def publications(self) -> int:
        """How many times strengths were published."""
        return int(self.schedule.publications)

    @property
    def uses_probe(self) -> bool:
        """Whether the influence comes from probes (`config.influence == 'probe'`)."""
        return self.config.influence == "probe"

    def reset(self, epoch: int = 0) -> None:
        """Start fresh at `epoch` (0, or a resumed run's epoch when its checkpoint had no SADA state),
        in place: workers keep reading the same shared tensors."""
        self.store.reset()
        self.margins.reset()
        self.timeline.reset(epoch)
        self.resharded_from = None
        self.margins_missing_on_load = False
        self._variance.fill_(math.nan)
        self._visits.zero_()
        self._reset_dynamics()
        self._nonfinite_total = 0
        self._nonfinite_at_last_publication = 0
        self.history: list[StrengthStatistics] = []
        self.schedule.reset(self.strategy.at_reset(self.num_examples, self._generator(-1)), epoch)

    def _reset_dynamics(self) -> None:
        for name, tensor in self._dynamics.items():
            tensor.fill_(-1 if name in ("predicted", "suggested") else (0 if name == "visits" else math.nan))

    # ---- the training loop's epochs ----------------------------------------------------------

    def begin_epoch(self) -> None:
        """Enter the next training-loop epoch. The caller first ends an epoch still open (a checkpoint
        written by the last step of an epoch, before that epoch ended)."""
        self.timeline.begin_epoch(self.publications)
        self.schedule.set_epoch(self.epochs_completed)

    def end_epoch(self) -> StrengthStatistics | None:
        """Close the epoch. With training-step influence, publish the strengths for the next epoch and
        return their statistics; with probes (publications follow probes) bring the per-example vectors
        up to date."""
        self.timeline.end_epoch()
        if self.uses_probe:
            self._gather_examples()
            return None
        return self.publish(float(self.epochs_completed))

    def probe_due_at_epoch_end(self) -> bool:
        """Whether a probe runs at the end of the open epoch (every epoch end, or every n-th)."""
        return self.timeline.probe_due_at_epoch_end()

    # ---- recording predictions ---------------------------------------------------------------

    def observe(self, indices: torch.Tensor, logits: torch.Tensor) -> int:
        """Record training-step logits (B x K) of the examples at `indices` (B) for this epoch (the rows of
        examples this process owns; the others are skipped): their margins always, and their influence
        unless probes feed the influence store. Returns the number of visits recorded."""
        recorded = self.margins.update(indices, logits, self.epoch)
        if not self.uses_probe:
            recorded = self.store.update(indices, logits, self.epoch)
        return recorded

    def observe_probe(self, indices: torch.Tensor, logits: torch.Tensor) -> int:
        """Record probe logits (clean view, eval mode) of the examples at `indices` for the current probe
        (the rows of examples this process owns)."""
        return self.store.update(indices, logits, self.probes_completed)

    def end_probe(self, at_epoch: float) -> StrengthStatistics:
        """Close the current probe and publish the strengths it yields."""
        self.timeline.end_probe()
        return self.publish(at_epoch)

    def publish(self, at_epoch: float) -> StrengthStatistics:
        """Publish the strategy's strengths from the stores (or keep them, for strategies that never
        change) and return their statistics."""
        examples = self._gather_examples()
        update = self.strategy.at_publication
        strengths = self.schedule.strengths
        if update is not None:
            strengths = update(examples, self.config, self._generator(self.publications))
        overrides = None
        if self._decide_labels is not None and self.epochs_completed >= self.label_issue_epoch:
            statistics = {**self.training_dynamics, "label": self.labels.numpy()}
            overrides = torch.from_numpy(self._decide_labels(statistics))
        self.schedule.publish(strengths, overrides)
        stats = self._statistics(at_epoch)
        self.history.append(stats)
        self._nonfinite_at_last_publication = self._nonfinite_total
        return stats

    def _gather_examples(self) -> Examples:
        """Every process's V, visits, training-step dynamics and (for strategies that read it) certainty put
        together in dataset order (one all-gather), and the non-finite count summed over processes."""
        store = self.store
        columns = {
            "variance": store.variance,
            "visits": store.visits,
            "certainty": store.certainty() if self.strategy.uses_certainty else math.nan,
            "nonfinite": 0.0,
            **{f"dynamics.{name}": value for name, value in self.margins.summary().items()},
        }
        local = torch.zeros(store.shard.size, len(columns), dtype=torch.float64)  # float64 holds each exactly
        for position, value in enumerate(columns.values()):
            local[:, position] = value
        if store.shard.size > 0:
            local[0, 3] = store.nonfinite_skipped  # each shard's count, once: the column sums to the total
        full = dict(zip(columns, store.shard.gather(local, self._all_gather).unbind(1)))
        self._variance.copy_(full["variance"])
        self._visits.copy_(full["visits"])
        for name, tensor in self._dynamics.items():
            tensor.copy_(full[f"dynamics.{name}"])
        self._nonfinite_total = int(full["nonfinite"].sum())
        return Examples(self.variance, self.visits, full["certainty"].to(torch.float32), self._dynamics["aum"].clone())

    def _statistics(self, at_epoch: float) -> StrengthStatistics:
        strengths = self.schedule.strengths
        has_strength = ~torch.isnan(strengths)
        defined = strengths[has_strength].to(torch.float64)
        stats = StrengthStatistics(
            publication=self.publications,
            epoch=at_epoch,
            warmup_fraction=1.0 - defined.numel() / self.num_examples,
            expected_strength=self._expected_strength(defined),
            nonfinite_skipped=self._nonfinite_total - self._nonfinite_at_last_publication,
            variance_defined=int((~torch.isnan(self._variance)).sum()),
            histogram=torch.histc(defined, bins=HISTOGRAM_BINS, min=0.0, max=1.0).long().tolist(),
        )
        if defined.numel() > 0:
            q25, q50, q75 = torch.quantile(defined, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
            stats.strength_mean, stats.strength_std = float(defined.mean()), float(defined.std(unbiased=False))
            stats.strength_q25, stats.strength_median, stats.strength_q75 = q25, q50, q75
            predicted = self._dynamics["predicted"]
            right = predicted == self.labels
            stats.strength_mean_right = _mean_or_none(strengths[has_strength & right])
            stats.strength_mean_wrong = _mean_or_none(strengths[has_strength & ~right & (predicted >= 0)])
            stats.rank_correlation = _spearman(strengths, self.schedule.previous)
        return stats

    def _expected_strength(self, defined: torch.Tensor) -> float:
        """Mean strength a visit gets, warm-up visits included (0 with strategy 'none')."""
        if not self.strategy.applies_op:
            return 0.0
        warmup = 0.5 if self.config.warmup_strength is None else self.config.warmup_strength
        undefined = self.num_examples - defined.numel()
        return (float(defined.sum()) + warmup * undefined) / self.num_examples

    def _generator(self, purpose: int) -> torch.Generator:
        """A generator that depends only on (seed, purpose): resumed runs draw the same values."""
        return torch.Generator().manual_seed(self.config.augmentation_seed * 1_000_003 + purpose + 1)

    # ---- state_dict and files ----------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        return {
            "num_examples": self.num_examples,
            "num_labels": self.num_labels,
            "world_size": self.shard.world_size,
            **self.timeline.state_dict(),
            "nonfinite_at_last_publication": self._nonfinite_at_last_publication,
            "config": self.config.to_dict(),
            "history": [asdict(h) for h in self.history],
        }

    def state_dict(self) -> State:
        """Everything needed to resume, by this process: `metadata` (sizes, timeline counters, config,
        history; JSON), `shared` (the tensors every process holds) and `rows` (this process's rows of the
        influence store and of the margins)."""
        shared = {f"schedule.{name}": t.clone() for name, t in self.schedule.state_dict().items()}
        shared.update({"examples.variance": self._variance, "examples.visits": self._visits})
        shared.update({f"dynamics.{name}": t for name, t in self._dynamics.items()})
        rows = {"store": self.store.state_dict(), "margins": self.margins.state_dict()}
        return {"metadata": self._metadata(), "shared": shared, "rows": rows}

    def load_state_dict(self, state: State, source: str = "the state given") -> list[str]:
        """Restore `state_dict()` output, or a checkpoint's as `persistence.read_state` reads it (whose rows
        may come from another number of processes: they are re-sharded), in place. Everything is checked
        before anything changes. Returns the names of config fields that differ from the saved run (the
        current values are kept); raises `ValueError` naming `source` if the state is incomplete or belongs to
        another dataset size, label count or store layout."""
        metadata, shared = state["metadata"], state["shared"]
        later = {f"dynamics.{name}": torch.full((self.num_examples,), value, dtype=_DYNAMICS[name])
                 for name, value in _LATER_DYNAMICS.items()}  # fmt: skip
        shared = {**later, **shared}
        counters, history, saved_config = _read_metadata(metadata, source)
        self._check_compatible(metadata, saved_config, source)
        try:
            schedule = {
                name.removeprefix("schedule."): t for name, t in shared.items() if name.startswith("schedule.")
            }
            self.schedule.check_state_dict(schedule)
            for name, here in (("examples.variance", self._variance), ("examples.visits", self._visits)):
                check_tensor(name, shared[name], tuple(here.shape), here.dtype, source)
            has_margins = "margins" in state["rows"]
            if has_margins:
                for name, here in self._dynamics.items():
                    check_tensor(f"dynamics.{name}", shared[f"dynamics.{name}"], tuple(here.shape), here.dtype, source)
            store_rows = self.store.read_shards(_sources(state["rows"]["store"], self.shard))
            margin_rows = (
                self.margins.read_shards(_sources(state["rows"]["margins"], self.shard)) if has_margins else None
            )
        except KeyError as error:
            raise ValueError(f"The SADA state in {source} lacks the tensor {error}.") from error

        self.schedule.load_state_dict(schedule)
        self._variance.copy_(shared["examples.variance"])
        self._visits.copy_(shared["examples.visits"])
        self.store.assign(store_rows)
        if margin_rows is None:
            self.margins.reset()
            self._reset_dynamics()
        else:
            self.margins.assign(margin_rows)
            for name, tensor in self._dynamics.items():
                tensor.copy_(shared[f"dynamics.{name}"])
        self.margins_missing_on_load = margin_rows is None
        self.timeline.load_state_dict(counters)
        self._nonfinite_at_last_publication = int(metadata["nonfinite_at_last_publication"])
        self._nonfinite_total = self._nonfinite_at_last_publication
        self.history = history
        saved_world_size = int(metadata["world_size"])
        self.resharded_from = saved_world_size if saved_world_size != self.shard.world_size else None
        return [f.name for f in fields(SADAConfig) if getattr(saved_config, f.name) != getattr(self.config, f.name)]

    def _check_compatible(self, metadata: dict[str, Any], saved_config: SADAConfig, source: str) -> None:
        for name, here, what in (
            ("num_examples", self.num_examples, "training examples"),
            ("num_labels", self.num_labels, "labels"),
        ):
            if int(metadata[name]) != here:
                raise ValueError(
                    f"The SADA state in {source} was written for {metadata[name]} {what}, but this run has {here}: "
                    "it belongs to another dataset or model, and its strengths would be assigned to the wrong "
                    "examples. Resume from a checkpoint of this dataset, or train with a new output_dir."
                )
        for name in _STRUCTURAL_FIELDS:
            if getattr(saved_config, name) != getattr(self.config, name):
                raise ValueError(
                    f"The SADA state in {source} was saved with {name}={getattr(saved_config, name)!r}, this run "
                    f"uses {name}={getattr(self.config, name)!r}; the stored tensors cannot be reused. Use the "
                    "saved value to resume."
                )

    def save(self, directory: str | os.PathLike, write_shared: bool = True) -> None:
        """Write everything needed to resume into `directory` (every process calls this; `write_shared` on
        one process). Atomic writes."""
        write_state(directory, self.state_dict(), self.shard, write_shared)

    def load(self, directory: str | os.PathLike) -> list[str]:
        """Restore the state saved in `directory` (see `load_state_dict`). Raises `FileNotFoundError` if
        there is none."""
        return self.load_state_dict(read_state(directory), source=os.path.join(directory, STATE_FILE))

    def summary(self) -> dict[str, np.ndarray]:
        """One row per example: what the run did (`strength`, `variance`, `visits` as last published, and the
        `training_label` it trained on last) and what it learned about each example (`training_dynamics`),
        with its `index` (its row in the training dataset), its `identity` (`row` and `id` in the user's
        dataset) and `label`. The columns are listed in docs/usage.md (what is saved where);
        `persistence.SUMMARY_VERSION` counts their changes."""
        return {
            "index": np.arange(self.num_examples, dtype=np.int64),
            **self.identity,
            "label": self.labels.numpy(),
            "strength": self.schedule.strengths.numpy(),
            "variance": self._variance.numpy(),
            "visits": self._visits.numpy(),
            "training_label": self.training_labels.numpy(),
            **self.training_dynamics,
        }

    def save_summary(self, directory: str | os.PathLike) -> None:
        """Write `summary()` to `sada_examples.parquet` and the configuration to `sada_config.json`: what a
        saved model needs to show how it was trained. Not resumable: checkpoints are."""
        write_parquet(os.path.join(directory, SUMMARY_FILE), self.summary(), SUMMARY_METADATA)
        write_config(directory, self._metadata())


def _read_metadata(metadata: dict[str, Any], source: str) -> tuple[dict[str, Any], list, SADAConfig]:
    """The timeline counters, history and config of saved metadata, after checking that every entry the
    state needs is there; `ValueError` naming what is missing."""
    try:
        for name in ("num_examples", "num_labels", "world_size", "nonfinite_at_last_publication"):
            int(metadata[name])
        counters = {
            "epochs_completed": int(metadata["epochs_completed"]),
            "epoch_open": bool(metadata["epoch_open"]),
            "probes_completed": int(metadata["probes_completed"]),
            "epoch_start_publication": int(metadata["epoch_start_publication"]),
        }
        history = [StrengthStatistics(**entry) for entry in metadata["history"]]
        return counters, history, SADAConfig.from_dict(metadata["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"The SADA state {source} has incomplete metadata ({error!r}).") from error


def _sources(rows: Any, shard: Shard) -> list:
    """A row store's saved shards: as read from a checkpoint, or this process's own `state_dict()`."""
    return rows if isinstance(rows, list) else [(shard, lambda: rows)]


def _mean_or_none(values: torch.Tensor) -> float | None:
    return float(values.to(torch.float64).mean()) if values.numel() > 0 else None


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman correlation of `a` and `b` over the examples where both are defined (None if fewer than 3,
    or if either is constant there)."""
    both = ~torch.isnan(a) & ~torch.isnan(b)
    if int(both.sum()) < 3:
        return None
    ranks = [average_ranks(x[both].to(torch.float64)) for x in (a, b)]
    centred = [r - r.mean() for r in ranks]
    norm = float(centred[0].norm() * centred[1].norm())
    return float((centred[0] * centred[1]).sum()) / norm if norm > 0 else None
