"""`Timeline`: when SADA's epochs begin and end, when probes run, and which publication of strengths each
visit reads, from the training loop's events (train begin, epoch begin, step end, epoch end) alone.

No Hugging Face imports: `SADATrainer`'s callback feeds it `global_step` and the number of batches of an
epoch, and does what it says (run a probe, end an epoch). Its counters are saved with the SADA state.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import torch


@dataclass
class Counters:
    """What a resumed run needs to continue the timeline.

    Attributes:
        epochs_completed: training-loop epochs ended since the state was reset.
        epoch_open: the current epoch has begun and not ended.
        probes_completed: probes fed into the store.
        epoch_start_publication: strength publications made before the current epoch began.
    """

    epochs_completed: int = 0
    epoch_open: bool = False
    probes_completed: int = 0
    epoch_start_publication: int = 0


@dataclass(frozen=True)
class EpochPlan:
    """What one training-loop epoch looks like to SADA (fixed when it begins).

    Attributes:
        loop_epoch: the training loop's epoch number (its sampler's shuffling seed).
        continues_open_epoch: a resumed run continues, mid-epoch, the epoch its checkpoint left open.
        first_step: the global step before the epoch's first optimizer step.
        updates: optimizer steps in the epoch.
        probe_steps: optimizer steps (1-based, within the epoch) after which a probe runs, before the
            epoch-end one.
    """

    loop_epoch: int
    continues_open_epoch: bool
    first_step: int
    updates: int
    probe_steps: tuple[int, ...]


class Timeline:
    """Epoch counting and the probe schedule of one run.

    Args:
        probe_every: epochs between probes (1/n: n probes per epoch), or None without probes.
        gradient_accumulation_steps: batches per optimizer step.
        ignore_data_skip: a resumed epoch restarts from its first batch (`TrainingArguments.ignore_data_skip`).

    Attributes:
        counters (`Counters`): epochs and probes so far (saved with checkpoints).
        plan (`EpochPlan` or None): the epoch being trained.
    """

    def __init__(
        self, probe_every: float | None, gradient_accumulation_steps: int = 1, ignore_data_skip: bool = False
    ) -> None:
        self.probe_every = probe_every
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.ignore_data_skip = ignore_data_skip
        self.counters = Counters()
        self.plan: EpochPlan | None = None
        self._resumed_at: int | None = None

    # ---- counters ----------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """The epoch being trained, or the next one between epochs (0-based; it keys the augmentation draws)."""
        return self.counters.epochs_completed

    def reset(self, epoch: int = 0) -> None:
        """Start fresh at `epoch` (0, or a resumed run's epoch when its checkpoint had no SADA state)."""
        self.counters = Counters(epochs_completed=epoch)
        self.plan = None

    def begin_epoch(self, publications: int) -> None:
        """Enter the next epoch, `publications` strength publications having been made."""
        if self.counters.epoch_open:
            raise RuntimeError("begin_epoch called while an epoch is open: end it first.")
        self.counters.epoch_open = True
        self.counters.epoch_start_publication = publications

    def end_epoch(self) -> None:
        self.counters.epoch_open = False
        self.counters.epochs_completed += 1

    def end_probe(self) -> None:
        self.counters.probes_completed += 1

    def probe_due_at_epoch_end(self) -> bool:
        """Whether a probe runs at the end of the open epoch (every epoch end, or every n-th)."""
        every = self.probe_every
        return every is not None and (every <= 1 or (self.counters.epochs_completed + 1) % round(every) == 0)

    def state_dict(self) -> dict[str, int | bool]:
        return asdict(self.counters)

    def load_state_dict(self, state: dict[str, int | bool]) -> None:
        self.counters = Counters(**state)
        self.plan = None

    # ---- the training loop's events ----------------------------------------------------------

    def start(self, global_step: int, resumed: bool) -> None:
        """`train()` begins at `global_step` (from a checkpoint if `resumed`)."""
        self._resumed_at = global_step if resumed else None
        self.plan = None

    def plan_epoch(self, global_step: int, batches: int) -> EpochPlan:
        """The plan of the loop's next epoch of `batches` batches per process, starting at `global_step`.

        The first epoch of a resumed run is the one the loop resumes (epoch global_step // updates), after
        skipping the batches its checkpoint had trained, as `Trainer` does. That epoch continues the one
        the SADA state left open only when batches are skipped; otherwise an open epoch (saved by the last
        step of an epoch, before the epoch ended) must be ended by the caller before this one begins.
        """
        accumulation = self.gradient_accumulation_steps
        updates = max(batches // accumulation + int(batches % accumulation > 0), 1)
        if self.plan is None and self._resumed_at is not None:
            loop_epoch = self._resumed_at // updates
            skipped = 0 if self.ignore_data_skip else (self._resumed_at % updates) * accumulation
        else:
            loop_epoch = 0 if self.plan is None else self.plan.loop_epoch + 1
            skipped = 0
        continues = skipped > 0 and self.counters.epoch_open
        done = skipped // accumulation if continues else 0
        self.plan = EpochPlan(
            loop_epoch=loop_epoch,
            continues_open_epoch=continues,
            first_step=global_step - done,
            updates=updates,
            probe_steps=tuple(mid_epoch_probe_steps(self.probe_every, updates)),
        )
        return self.plan

    def probe_after_step(self, global_step: int) -> float | None:
        """The training progress (in epochs) of a probe that runs after optimizer step `global_step`, or None."""
        plan = self.plan
        update = global_step - plan.first_step
        if update not in plan.probe_steps:
            return None
        return self.counters.epochs_completed + update / plan.updates

    def visit_publications(self, batches: Iterable[Sequence[int]], num_examples: int) -> torch.Tensor:
        """The publication each example's visit in this epoch must see, given the epoch's batches in order.

        Strengths published after optimizer step u reach the batches from u * GA + 1 on: batch u * GA is
        built before the probe, by the loader's look-ahead. An example repeated to even out batches keeps
        its first visit's publication. 0 everywhere without probes within the epoch ("the table published
        last")."""
        needed = torch.zeros(num_examples, dtype=torch.int64)
        if not self.plan.probe_steps:
            return needed
        first_batches = [step * self.gradient_accumulation_steps + 1 for step in self.plan.probe_steps]
        never = torch.iinfo(torch.int64).max
        needed.fill_(never)
        base = self.counters.epoch_start_publication
        for number, batch in enumerate(batches):
            rows = torch.as_tensor(batch, dtype=torch.int64)
            publication = torch.tensor(base + bisect.bisect_right(first_batches, number))
            needed[rows] = torch.minimum(needed[rows], publication)
        return torch.where(needed == never, 0, needed)


def mid_epoch_probe_steps(probe_every: float | None, updates_in_epoch: int) -> list[int]:
    """The optimizer steps (1-based, within an epoch) after which a probe runs, before the epoch-end one:
    probe k of n = 1/probe_every runs after step ceil(k * U / n); probes that would share a step run once."""
    if probe_every is None or probe_every >= 1:
        return []
    per_epoch = round(1 / probe_every)
    steps = {math.ceil(k * updates_in_epoch / per_epoch) for k in range(1, per_epoch)}
    return sorted(s for s in steps if 0 < s < updates_in_epoch)
