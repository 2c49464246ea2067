"""`SADAState`: everything SADA keeps for a training run, with its epoch and probe logic.

No Hugging Face imports: the trainer calls `begin_epoch` / `end_epoch` at the training loop's epoch
boundaries, `observe` with training-step logits or `observe_probe` + `end_probe` with probe logits,
and `save` / `load` with checkpoints (the file format lives in `persistence.py`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from .config import SADAConfig
from .persistence import read_shard, read_state, write_config, write_shard, write_state, write_summary
from .sharding import AllGather, Shard
from .store import InfluenceStore
from .strategies import STRATEGIES
from .strengths import StrengthSchedule

HISTOGRAM_BINS = 20
# Config fields that change what is stored: a state saved with other values cannot be restored.
_STRUCTURAL_FIELDS = ("window", "store_dtype", "influence")


@dataclass(frozen=True)
class Examples:
    """The per-example vectors a strategy chooses strengths from, N long, identical on every process."""

    variance: torch.Tensor  # float32, the EMA V (NaN: undefined)
    visits: torch.Tensor  # int32, stored visits
    certainty: torch.Tensor  # float32, 1 - H(p) / log K of the last prediction (NaN: never visited, or unused)


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
    histogram: list[int] = field(default_factory=list)  # HISTOGRAM_BINS bins over [0, 1]

    def scalars(self) -> dict[str, float]:
        """What goes to the logs (`sada/<name>`): every defined number but the histogram."""
        return {k: v for k, v in asdict(self).items() if isinstance(v, (int, float)) and k != "publication"}


class SADAState:
    """SADA's state for one run over `num_examples` training examples with `num_labels` classes.

    With W processes, each keeps the store rows of the examples its `shard` owns (i % W == rank) and
    every process holds the N-long vectors (strengths, V, visits), made identical at each publication
    by `all_gather` (`accelerator.gather`; not needed with one process).

    Attributes:
        config (`SADAConfig`): the configuration, with a concrete `augmentation_seed`.
        store (`InfluenceStore`): the per-example influence signal of this process's examples.
        schedule (`StrengthSchedule`): epoch and strengths in shared memory, read by `SADATransform`.
        epochs_completed (`int`): training-loop epochs ended since `reset`.
        epoch_open (`bool`): the current epoch has begun and not ended.
        probes_completed (`int`): probes fed into the store since `reset`.
        resharded_from (`int` or `None`): the number of processes of the state `load` re-sharded, if any.
        epoch_start_publication (`int`): publications made before the current epoch began.
        history (`list[StrengthStatistics]`): one entry per publication.
    """

    def __init__(
        self,
        num_examples: int,
        num_labels: int,
        config: SADAConfig,
        shard: Shard | None = None,
        all_gather: AllGather | None = None,
    ) -> None:
        if config.augmentation_seed is None:
            raise ValueError(
                "SADAState needs a config with a concrete `augmentation_seed` (SADATrainer fills it from args.seed)."
            )
        self.config = config
        self.strategy = STRATEGIES[config.strategy]
        self.store = InfluenceStore(
            num_examples, num_labels, config.window, config.decay, config.store_dtype, shard=shard
        )
        self._all_gather = all_gather
        self.schedule = StrengthSchedule(num_examples)
        # V and visits of every example as of the last publication (every process holds them).
        self._variance = torch.full((num_examples,), math.nan, dtype=torch.float32)
        self._visits = torch.zeros(num_examples, dtype=torch.int32)
        self.reset()

    @property
    def shard(self) -> Shard:
        return self.store.shard

    @property
    def shared_nbytes(self) -> int:
        """Bytes of the N-long vectors every process holds (strength tables, V, visits)."""
        schedule = self.schedule
        tensors = (schedule.strengths, schedule.previous, schedule.visit_publication, self._variance, self._visits)
        return sum(t.numel() * t.element_size() for t in tensors)

    @property
    def num_examples(self) -> int:
        return self.store.num_examples

    @property
    def num_labels(self) -> int:
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
    def epoch(self) -> int:
        """The training-loop epoch being trained (0-based; it keys the augmentation draws)."""
        return int(self.schedule.epoch)

    @property
    def publications(self) -> int:
        return int(self.schedule.publications)

    @property
    def uses_probe(self) -> bool:
        return self.config.influence == "probe"

    def reset(self, epoch: int = 0) -> None:
        """Start fresh at `epoch` (0, or a resumed run's epoch when its checkpoint had no SADA state),
        in place: workers keep reading the same shared tensors."""
        self.store.reset()
        self.resharded_from = None
        self._variance.fill_(math.nan)
        self._visits.zero_()
        self._nonfinite_total = 0
        self.epochs_completed = epoch
        self.epoch_open = False
        self.probes_completed = 0
        self.epoch_start_publication = 0
        self.history: list[StrengthStatistics] = []
        self._nonfinite_at_last_publication = 0
        self.schedule.reset(self.strategy.at_reset(self.num_examples, self._generator(-1)), epoch)

    # ---- the training loop's epochs ----------------------------------------------------------

    def begin_epoch(self) -> None:
        """Enter the next training-loop epoch. The caller first ends an epoch still open (a checkpoint
        written by the last step of an epoch, before that epoch ended)."""
        if self.epoch_open:
            raise RuntimeError("begin_epoch called while an epoch is open: end it first.")
        self.epoch_open = True
        self.epoch_start_publication = self.publications
        self.schedule.set_epoch(self.epochs_completed)

    def end_epoch(self) -> StrengthStatistics | None:
        """Close the epoch. With training-step influence, publish the strengths for the next epoch and
        return their statistics; with probes, publications follow probes (`end_probe`)."""
        self.epoch_open = False
        self.epochs_completed += 1
        if self.uses_probe:
            return None
        return self.publish(float(self.epochs_completed))

    def probe_due_at_epoch_end(self) -> bool:
        """Whether a probe runs at the end of the open epoch (every epoch end, or every n-th)."""
        every = self.config.probe_every
        return self.uses_probe and (every <= 1 or (self.epochs_completed + 1) % round(every) == 0)

    # ---- recording predictions ---------------------------------------------------------------

    def observe(self, indices: torch.Tensor, logits: torch.Tensor) -> int:
        """Record training-step logits (B x K) of the examples at `indices` (B) for this epoch (the rows of
        examples this process owns; the others are skipped)."""
        return self.store.update(indices, logits, self.epoch)

    def observe_probe(self, indices: torch.Tensor, logits: torch.Tensor) -> int:
        """Record probe logits (clean view, eval mode) of the examples at `indices` for the current probe
        (the rows of examples this process owns)."""
        return self.store.update(indices, logits, self.probes_completed)

    def end_probe(self, at_epoch: float) -> StrengthStatistics:
        """Close the current probe and publish the strengths it yields."""
        self.probes_completed += 1
        return self.publish(at_epoch)

    def publish(self, at_epoch: float) -> StrengthStatistics:
        """Publish the strategy's strengths from the store (or keep them, for strategies that never
        change) and return their statistics."""
        examples = self._gather_examples()
        update = self.strategy.at_publication
        strengths = self.schedule.strengths
        if update is not None:
            strengths = update(examples, self.config, self._generator(self.publications))
        self.schedule.publish(strengths)
        stats = self._statistics(at_epoch)
        self.history.append(stats)
        self._nonfinite_at_last_publication = self._nonfinite_total
        return stats

    def _gather_examples(self) -> Examples:
        """Every process's V, visits and (for strategies that read it) certainty put together in dataset
        order (one all-gather), and the non-finite count summed over processes."""
        store = self.store
        local = torch.zeros(store.shard.size, 4, dtype=torch.float64)  # float64 holds each column exactly
        local[:, 0], local[:, 1] = store.variance, store.visits
        local[:, 2] = store.certainty() if self.strategy.uses_certainty else math.nan
        if store.shard.size > 0:
            local[0, 3] = store.nonfinite_skipped  # each shard's count, once: the column sums to the total
        full = store.shard.gather(local, self._all_gather)
        self._variance.copy_(full[:, 0])
        self._visits.copy_(full[:, 1])
        self._nonfinite_total = int(full[:, 3].sum())
        return Examples(self.variance, self.visits, full[:, 2].to(torch.float32))

    def _statistics(self, at_epoch: float) -> StrengthStatistics:
        strengths = self.schedule.strengths
        defined = strengths[~torch.isnan(strengths)].to(torch.float64)
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

    # ---- persistence -------------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        return {
            "num_examples": self.num_examples,
            "num_labels": self.num_labels,
            "world_size": self.shard.world_size,
            "epochs_completed": self.epochs_completed,
            "epoch_open": self.epoch_open,
            "probes_completed": self.probes_completed,
            "epoch_start_publication": self.epoch_start_publication,
            "nonfinite_at_last_publication": self._nonfinite_at_last_publication,
            "config": self.config.to_dict(),
            "history": [asdict(h) for h in self.history],
        }

    def save(self, directory: str | os.PathLike, write_shared: bool = True) -> None:
        """Write everything needed to resume into `directory`: what every process holds in
        `sada_state.safetensors` and `sada_config.json` (if `write_shared`: one process writes them), and
        with W > 1 processes this process's store shard (every process calls `save`). Atomic writes."""
        store = {f"store.{name}": t for name, t in self.store.state_dict().items()}
        sharded = self.shard.world_size > 1
        if sharded:
            write_shard(directory, self.shard.rank, self.shard.world_size, store)
        if write_shared:
            tensors = {f"schedule.{name}": t.clone() for name, t in self.schedule.state_dict().items()}
            tensors.update({"examples.variance": self._variance, "examples.visits": self._visits})
            write_state(directory, tensors if sharded else {**tensors, **store}, self._metadata())

    def save_summary(self, directory: str | os.PathLike) -> None:
        """Write what a saved model needs to show how it was augmented: one row per example (strength,
        V, visits at the last publication) in `sada_examples.parquet`, and `sada_config.json`. Not
        resumable: checkpoints are."""
        write_summary(
            directory,
            {
                "index": np.arange(self.num_examples, dtype=np.int64),
                "strength": self.schedule.strengths.numpy(),
                "variance": self._variance.numpy(),
                "visits": self._visits.numpy(),
            },
        )
        write_config(directory, self._metadata())

    def load(self, directory: str | os.PathLike) -> list[str]:
        """Restore the state saved in `directory`, in place. Everything is read and checked before
        anything changes. Returns the names of config fields that differ from the saved run (the
        current values are kept). Raises `FileNotFoundError` if there is no state, `ValueError` if it
        is corrupt or belongs to another dataset size, label count or store layout.

        A state saved by another number of processes is re-sharded: each process reads the saved shards one at a
        time and keeps the rows it owns now."""
        tensors, metadata = read_state(directory)
        where = os.path.join(directory, "sada_state.safetensors")
        try:
            saved = {name: int(metadata[name]) for name in ("num_examples", "num_labels", "epochs_completed")}
            saved_world_size = int(metadata.get("world_size", 1))  # format version 2: one process
            counters = {
                name: int(metadata[name])
                for name in ("probes_completed", "epoch_start_publication", "nonfinite_at_last_publication")
            }
            epoch_open = bool(metadata["epoch_open"])
            history = [StrengthStatistics(**entry) for entry in metadata["history"]]
            saved_config = SADAConfig.from_dict(metadata["config"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"The SADA state {where} has incomplete metadata ({error!r}).") from error
        for name, here in (("num_examples", self.num_examples), ("num_labels", self.num_labels)):
            if saved[name] != here:
                what = "training examples" if name == "num_examples" else "labels"
                raise ValueError(
                    f"The SADA state in {where} was written for {saved[name]} {what}, but this run has {here}: "
                    "it belongs to another dataset or model, and its strengths would be assigned to the wrong "
                    "examples. Resume from a checkpoint of this dataset, or train with a new output_dir."
                )
        for name in _STRUCTURAL_FIELDS:
            if getattr(saved_config, name) != getattr(self.config, name):
                raise ValueError(
                    f"The SADA state in {where} was saved with {name}={getattr(saved_config, name)!r}, this run "
                    f"uses {name}={getattr(self.config, name)!r}; the stored tensors cannot be reused. Use the "
                    "saved value to resume."
                )
        schedule = _prefixed(tensors, "schedule.")
        if saved_world_size == 1:
            whole = _prefixed(tensors, "store.")
            sources = [(Shard(self.num_examples), lambda: whole)]
            examples = _prefixed(tensors, "examples.") or {
                "variance": whole.get("variance"),
                "visits": whole.get("visits"),
            }
        else:
            own = saved_world_size == self.shard.world_size
            ranks = [self.shard.rank] if own else range(saved_world_size)
            sources = [
                (Shard(self.num_examples, rank, saved_world_size), _shard_reader(directory, rank, saved_world_size))
                for rank in ranks
            ]
            examples = _prefixed(tensors, "examples.")
        try:
            for name, here in (("variance", self._variance), ("visits", self._visits)):
                got = examples[name]
                if got is None or got.shape != here.shape or got.dtype != here.dtype:
                    raise ValueError(f"The SADA state in {where} has no valid per-example {name} tensor.")
            self.schedule.check_state_dict(schedule)
            self.store.load_shards(sources)  # reads and checks every shard before it copies any row
        except KeyError as error:
            raise ValueError(f"The SADA state in {where} lacks the tensor {error}.") from error
        self.schedule.load_state_dict(schedule)
        self._variance.copy_(examples["variance"])
        self._visits.copy_(examples["visits"])

        self.epochs_completed = saved["epochs_completed"]
        self.epoch_open = epoch_open
        self.probes_completed = counters["probes_completed"]
        self.epoch_start_publication = counters["epoch_start_publication"]
        self._nonfinite_at_last_publication = counters["nonfinite_at_last_publication"]
        self._nonfinite_total = self._nonfinite_at_last_publication
        self.history = history
        self.resharded_from = saved_world_size if saved_world_size != self.shard.world_size else None
        return [f.name for f in fields(SADAConfig) if getattr(saved_config, f.name) != getattr(self.config, f.name)]


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name.removeprefix(prefix): t for name, t in tensors.items() if name.startswith(prefix)}


def _shard_reader(directory: str | os.PathLike, rank: int, world_size: int):
    return lambda: _prefixed(read_shard(directory, rank, world_size), "store.")


def mid_epoch_probe_steps(probe_every: float, updates_in_epoch: int) -> list[int]:
    """The optimizer steps (1-based, within an epoch) after which a probe runs, before the epoch-end one:
    probe k of n = 1/probe_every runs after step ceil(k * U / n); probes that would share a step run once."""
    if probe_every >= 1:
        return []
    per_epoch = round(1 / probe_every)
    steps = {math.ceil(k * updates_in_epoch / per_epoch) for k in range(1, per_epoch)}
    return sorted(s for s in steps if 0 < s < updates_in_epoch)
