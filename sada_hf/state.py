"""`SADAState`: everything SADA keeps for a training run, with its epoch logic and exact save/restore.

No Hugging Face imports: the trainer calls `observe` every step, `begin_epoch` / `end_epoch` at epoch
boundaries, and `save` / `load` with checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import SADAConfig
from .store import InfluenceStore
from .strengths import (
    StrengthSchedule,
    entropy_strengths,
    random_strengths,
    shuffled_strengths,
    variance_strengths,
)

STATE_FILE = "sada_state.safetensors"
CONFIG_FILE = "sada_config.json"
_FORMAT = "sada_hf.state"
_FORMAT_VERSION = 1
HISTOGRAM_BINS = 20
# Config fields that change what is stored: a state saved with other values cannot be restored.
_STRUCTURAL_FIELDS = ("window", "store_dtype")


class SADAState:
    """SADA's state for one run over `num_examples` training examples with `num_labels` classes.

    Attributes:
        config (`SADAConfig`): the configuration, with a concrete `seed`.
        store (`InfluenceStore`): the per-example influence signal.
        schedule (`StrengthSchedule`): epoch and strengths in shared memory, read by `SADATransform`.
        epochs_completed (`int`): number of `end_epoch` calls since `reset`.
        history (`list[dict]`): per-epoch strength statistics, one dict per completed epoch.
    """

    def __init__(self, num_examples: int, num_labels: int, config: SADAConfig) -> None:
        if config.augmentation_seed is None:
            raise ValueError(
                "SADAState needs a config with a concrete `augmentation_seed` (SADATrainer fills it from args.seed)."
            )
        self.config = config
        self.store = InfluenceStore(num_examples, num_labels, config.window, config.decay, config.store_dtype)
        self.schedule = StrengthSchedule(num_examples)
        self.epochs_completed = 0
        self.history: list[dict[str, Any]] = []
        self._nonfinite_at_epoch_start = 0
        self.reset()

    @property
    def num_examples(self) -> int:
        return self.store.num_examples

    @property
    def num_labels(self) -> int:
        return self.store.num_labels

    @property
    def strengths(self) -> torch.Tensor:
        """Strength of each example for the current epoch (float32; NaN while in warm-up)."""
        return self.schedule.strengths.clone()

    @property
    def variance(self) -> torch.Tensor:
        """The EMA variance V of each example (float32; NaN where undefined)."""
        return self.store.variance.clone()

    @property
    def visits(self) -> torch.Tensor:
        """Stored visits of each example (int32)."""
        return self.store.visits.clone()

    @property
    def epoch(self) -> int:
        """The epoch being trained (the one visits are recorded for)."""
        return int(self.schedule.epoch)

    def reset(self, epoch: int = 0) -> None:
        """Start fresh at `epoch` (0, or a resumed run's epoch when its checkpoint had no SADA state),
        in place: workers keep reading the same shared tensors."""
        self.store.reset()
        self.epochs_completed = epoch
        self.history = []
        self._nonfinite_at_epoch_start = 0
        self.schedule.set_epoch(epoch)
        if self.config.strategy == "random":
            self.schedule.publish(random_strengths(self.num_examples, self._generator(-1)))
        else:
            self.schedule.publish(torch.full((self.num_examples,), math.nan))

    def observe(self, indices: torch.Tensor, logits: torch.Tensor) -> int:
        """Record the training-step logits (B x K) of the examples at `indices` (B) for this epoch."""
        return self.store.update(indices, logits, self.epoch)

    def begin_epoch(self, epoch: int) -> list[dict[str, Any]]:
        """Enter `epoch`. Epoch ends that were skipped (a checkpoint written by the last step of an
        epoch, before that epoch ended) are run first; their statistics are returned."""
        caught_up = [self.end_epoch() for _ in range(self.epochs_completed, epoch)]
        self.schedule.set_epoch(epoch)
        return caught_up

    def end_epoch(self) -> dict[str, Any]:
        """Compute and publish the strengths for the next epoch; return this epoch's statistics."""
        strategy = self.config.strategy
        if strategy in ("sada", "sada_shuffled"):
            strengths = variance_strengths(self.store.variance, self.config.normalization, self.config.direction)
            if strategy == "sada_shuffled":
                strengths = shuffled_strengths(strengths, self._generator(self.epochs_completed))
            self.schedule.publish(strengths)
        elif strategy == "entropy":
            self.schedule.publish(entropy_strengths(self.store.log_probs, self.store.visits))
        # "random" keeps the strengths drawn at reset; "trivialaugment" and "none" publish none.

        stats = self._statistics()
        self.history.append(stats)
        self.epochs_completed += 1
        self._nonfinite_at_epoch_start = self.store.nonfinite_skipped
        return stats

    def _statistics(self) -> dict[str, Any]:
        strengths = self.schedule.strengths
        defined = strengths[~torch.isnan(strengths)].to(torch.float64)
        stats: dict[str, Any] = {
            "epoch": self.epochs_completed + 1,
            "warmup_fraction": 1.0 - defined.numel() / self.num_examples,
            "expected_strength": self._expected_strength(defined),
            "nonfinite_skipped": self.store.nonfinite_skipped - self._nonfinite_at_epoch_start,
            "variance_defined": int((~torch.isnan(self.store.variance)).sum()),
        }
        if defined.numel() > 0:
            q25, q50, q75 = torch.quantile(defined, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
            stats.update(
                strength_mean=float(defined.mean()),
                strength_std=float(defined.std(unbiased=False)),
                strength_q25=q25,
                strength_median=q50,
                strength_q75=q75,
            )
        stats["histogram"] = torch.histc(defined, bins=HISTOGRAM_BINS, min=0.0, max=1.0).long().tolist()
        return stats

    def _expected_strength(self, defined: torch.Tensor) -> float:
        """Mean strength a visit gets next epoch, warm-up visits included (0 with strategy 'none')."""
        if self.config.strategy == "none":
            return 0.0
        warmup = 0.5 if self.config.warmup_strength is None else self.config.warmup_strength
        undefined = self.num_examples - defined.numel()
        return (float(defined.sum()) + warmup * undefined) / self.num_examples

    def _generator(self, epoch: int) -> torch.Generator:
        """A generator that depends only on (seed, purpose epoch): resumed runs draw the same values."""
        return torch.Generator().manual_seed(self.config.augmentation_seed * 1_000_003 + epoch + 1)

    # ---- persistence -------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> None:
        """Write `sada_state.safetensors` (everything needed to resume) and `sada_config.json` (for
        people) into `directory`. Each file is written under a temporary name and renamed, so a crash
        leaves the previous state intact."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"store.{name}": tensor.contiguous() for name, tensor in self.store.state_dict().items()}
        tensors["schedule.strengths"] = self.schedule.strengths.clone()
        tensors["schedule.epoch"] = self.schedule.epoch.clone()
        summary = self._summary()
        metadata = {
            "format": _FORMAT,
            "format_version": str(_FORMAT_VERSION),
            "summary": json.dumps(summary),
            "history": json.dumps(self.history),
            "nonfinite_at_epoch_start": str(self._nonfinite_at_epoch_start),
        }
        _atomic_write(directory / STATE_FILE, lambda path: save_file(tensors, path, metadata=metadata))
        _atomic_write(
            directory / CONFIG_FILE, lambda path: Path(path).write_text(json.dumps(summary, indent=2) + "\n")
        )

    def _summary(self) -> dict[str, Any]:
        return {
            "num_examples": self.num_examples,
            "num_labels": self.num_labels,
            "epochs_completed": self.epochs_completed,
            "config": self.config.to_dict(),
        }

    def load(self, directory: str | os.PathLike) -> list[str]:
        """Restore the state saved in `directory`, in place. Everything is read and checked before
        anything changes. Returns the names of config fields that differ from the saved run (the
        current values are kept). Raises `FileNotFoundError` if there is no state, `ValueError` if it
        is corrupt or belongs to another dataset size or label count."""
        path = Path(directory) / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No SADA state at {path}.")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            summary = json.loads(metadata["summary"])
            history = json.loads(metadata["history"])
            saved = {name: int(summary[name]) for name in ("num_examples", "num_labels", "epochs_completed")}
            nonfinite_at_epoch_start = int(metadata["nonfinite_at_epoch_start"])
            saved_config = SADAConfig.from_dict(summary["config"])
        except (SafetensorError, OSError, KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"The SADA state {path} is truncated or corrupt ({type(error).__name__}: {error}). Resume from an "
                "earlier checkpoint, or delete the file to continue with a fresh SADA state."
            ) from error
        if metadata.get("format") != _FORMAT or metadata.get("format_version") != str(_FORMAT_VERSION):
            raise ValueError(
                f"{path} is not a SADA state of format version {_FORMAT_VERSION} "
                f"(format {metadata.get('format')!r}, version {metadata.get('format_version')!r})."
            )
        for name, here in (("num_examples", self.num_examples), ("num_labels", self.num_labels)):
            if saved[name] != here:
                what = "training examples" if name == "num_examples" else "labels"
                raise ValueError(
                    f"The SADA state in {path} was written for {saved[name]} {what}, but this run has {here}: "
                    "it belongs to another dataset or model, and its strengths would be assigned to the wrong "
                    "examples. Resume from a checkpoint of this dataset, or train with a new output_dir."
                )
        for name in _STRUCTURAL_FIELDS:
            if getattr(saved_config, name) != getattr(self.config, name):
                raise ValueError(
                    f"The SADA state in {path} was saved with {name}={getattr(saved_config, name)!r}, this run uses "
                    f"{name}={getattr(self.config, name)!r}; the stored tensors cannot be reused. Use the saved "
                    "value to resume."
                )
        schedule_strengths = tensors.get("schedule.strengths")
        schedule_epoch = tensors.get("schedule.epoch")
        if (
            schedule_strengths is None
            or schedule_epoch is None
            or schedule_strengths.shape != self.schedule.strengths.shape
            or schedule_strengths.dtype != torch.float32
            or schedule_epoch.shape != ()
            or schedule_epoch.dtype != torch.int64
        ):
            raise ValueError(f"The SADA state in {path} has no valid schedule tensors (strengths, epoch).")
        store_state = {name.removeprefix("store."): t for name, t in tensors.items() if name.startswith("store.")}
        self.store.load_state_dict(store_state)  # checks every tensor before it copies any

        self.schedule.publish(schedule_strengths)
        self.schedule.set_epoch(int(schedule_epoch))
        self.epochs_completed = saved["epochs_completed"]
        self.history = history
        self._nonfinite_at_epoch_start = nonfinite_at_epoch_start
        return [f.name for f in fields(SADAConfig) if getattr(saved_config, f.name) != getattr(self.config, f.name)]


def _atomic_write(path: Path, write) -> None:
    """Write through `write(temporary_path)` then rename over `path`: readers see the old or the new file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
