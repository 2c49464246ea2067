"""`SADAConfig`: every SADA hyper-parameter, with its default and its valid range in one place."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .label_issues import CUTOFF, CUTOFFS, check_cutoff
from .ops import DEFAULT_MAX_MAGNITUDES, MAGNITUDE_LIMITS, OP_NAMES
from .strategies import STRATEGIES
from .strengths import DIRECTIONS, NORMALIZATIONS

INFLUENCES = ("train_step", "probe")
STORE_DTYPES = ("float32", "float16")
LABEL_ISSUE_ACTIONS = ("keep", "drop", "relabel")


@dataclass
class SADAConfig:
    """Configuration of SADA's influence signal, strengths and augmentation space.

    Parseable with `transformers.HfArgumentParser`; every field's `help` says what it does.
    """

    # Strategy: how per-example strengths are chosen. Everything but "sada" is a comparison baseline.
    strategy: str = field(
        default="sada",
        metadata={
            "help": "How strengths are chosen: "
            + "; ".join(f"'{name}' ({strategy.help})" for name, strategy in STRATEGIES.items())
            + ".",
            "choices": list(STRATEGIES),
        },
    )

    # Where the influence signal comes from
    influence: str = field(
        default="train_step",
        metadata={
            "help": "Where the predictions whose KL is the influence come from: 'train_step' (the paper: the "
            "training step's logits on the augmented view, free) or 'probe' (a no-grad, eval-mode forward over "
            "every training example through the evaluation transform: measures the example, not its augmentation; "
            "one extra forward pass per example and probe).",
            "choices": list(INFLUENCES),
        },
    )
    probe_every: float = field(
        default=1.0,
        metadata={
            "help": "With influence 'probe': epochs between probes. 1 probes at each epoch end, 2 at every other "
            "epoch end, 0.25 four times per epoch (1/n probes n times per epoch, so short fine-tunes get strengths "
            "in their first epoch). Strengths are published after every probe; the window and the EMA count probes."
        },
    )
    save_dynamics: bool = field(
        default=True,
        metadata={
            "help": "With influence 'probe': write each probe's per-example dynamics (gold-label probability, "
            "margin, correctness, KL, V, strength) to output_dir/sada_dynamics/ as Parquet; data_map() and "
            "label_issues() put their statistics (probe_*) beside the training steps'."
        },
    )

    # Influence signal (paper Eq. 5-7)
    window: int = field(
        default=10,
        metadata={"help": "Number of recent influence values whose variance is taken (paper: 10; 5 for short runs)."},
    )
    decay: float = field(
        default=0.9,
        metadata={"help": "EMA weight of the newest window variance, V = decay * V_t + (1 - decay) * V (paper: 0.9)."},
    )

    # From variance to strength
    normalization: str = field(
        default="rank",
        metadata={
            "help": "How variances become strengths: 'rank' (uniform strengths in [0, 1], TrivialAugment's mean "
            "amount, the variance's ordering) or 'minmax' (the paper; heavy-tailed V puts most strengths near the "
            "extreme: 1.5 points below TrivialAugment in docs/results.md).",
            "choices": list(NORMALIZATIONS),
        },
    )
    direction: str = field(
        default="stable_strong",
        metadata={
            "help": "'stable_strong': low variance -> strong augmentation (the paper); 'unstable_strong' inverts "
            "it: the hard examples get the strong augmentation (with influence 'probe' it beat TrivialAugment on "
            "long-tailed data trained from scratch with plain cross-entropy, not with --logit_adjustment; "
            "docs/results.md).",
            "choices": list(DIRECTIONS),
        },
    )
    warmup_strength: float | None = field(
        default=None,
        metadata={
            "help": "Strength of a visit to an example that has no SADA strength yet (its first visits, or all "
            "variances equal). None draws a fresh uniform strength per visit, as TrivialAugment; a number in "
            "[0, 1] uses that constant (with strategy 'trivialaugment': a fixed-strength run)."
        },
    )

    # Augmentation space (paper Table 8)
    ops: list[str] = field(
        default_factory=lambda: list(OP_NAMES),
        metadata={"help": f"Ops drawn uniformly per visit. Default: all 14 ({', '.join(OP_NAMES)})."},
    )
    max_magnitudes: dict[str, float] | str | None = field(
        default=None,
        metadata={
            "help": "Overrides of the magnitude at strength 1, as a dict or JSON string, e.g. '{\"rotate\": 45}'. "
            f"Defaults: {json.dumps({k: round(v, 4) for k, v in DEFAULT_MAX_MAGNITUDES.items()})}."
        },
    )

    # Label issues, acted on during training
    label_issue_action: str = field(
        default="keep",
        metadata={
            "help": "What training does with the label-issue suspects (the cut-off's, re-decided at each "
            "publication from the training-step statistics against the given labels) from --label_issue_start "
            "on: 'keep' (train on every label as given), 'drop' (their loss stops counting) or 'relabel' (train "
            "them on their suggested label, the class most of their training steps predicted). One training instead of train, clean, retrain.",
            "choices": list(LABEL_ISSUE_ACTIONS),
        },
    )
    label_issue_cutoff: str = field(
        default=CUTOFF,
        metadata={
            "help": "With --label_issue_action drop or relabel: which rule of sada_hf.label_issues.CUTOFFS makes an "
            f"example a suspect. {CUTOFF!r} (right in under a quarter of its training steps) is the ranking's "
            "default; 'never_right' flags fewer, more surely wrong labels.",
            "choices": list(CUTOFFS),
        },
    )
    label_issue_start: float = field(
        default=0.5,
        metadata={
            "help": "With --label_issue_action drop or relabel: the share of the training's epochs (0 to 1) "
            "after which suspects are first acted on; before it, the statistics gather."
        },
    )

    # Store
    store_dtype: str = field(
        default="float32",
        metadata={
            "help": "dtype of the stored log-probabilities (N x K): 'float32' (KL within about 3e-6 relative of "
            "float64) or 'float16' (half the memory; about 2e-3 relative, more between near-identical predictions).",
            "choices": list(STORE_DTYPES),
        },
    )
    augmentation_seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed of the augmentation draws (and of the baselines' random strengths). None: "
            "TrainingArguments.seed under SADATrainer, else 0."
        },
    )

    def __post_init__(self) -> None:
        _check_choice("strategy", self.strategy, tuple(STRATEGIES))
        _check_choice("influence", self.influence, INFLUENCES)
        _check_probe_every(self.probe_every)
        _check_choice("normalization", self.normalization, NORMALIZATIONS)
        _check_choice("direction", self.direction, DIRECTIONS)
        _check_choice("store_dtype", self.store_dtype, STORE_DTYPES)
        _check_choice("label_issue_action", self.label_issue_action, LABEL_ISSUE_ACTIONS)
        check_cutoff(self.label_issue_cutoff)
        if self.label_issue_cutoff != CUTOFF and self.label_issue_action == "keep":
            raise ValueError(
                f"`label_issue_cutoff` {self.label_issue_cutoff!r} is used only when acting on label issues: set "
                "`label_issue_action` to 'drop' or 'relabel' too (label_issues(cutoff=...) picks the cut-off of the "
                "ranking after training)."
            )
        if not 0.0 <= self.label_issue_start <= 1.0:
            raise ValueError(
                f"`label_issue_start` must be in [0, 1] (a share of the training's epochs), got {self.label_issue_start!r}."
            )
        if not isinstance(self.window, int) or self.window < 2:
            raise ValueError(
                f"`window` must be an integer >= 2, got {self.window!r}: the variance of one value is always 0. "
                "Use 10 (the paper) or 5 for short runs."
            )
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"`decay` must be in (0, 1], got {self.decay!r}: it weights the newest variance.")
        if self.warmup_strength is not None and not 0.0 <= self.warmup_strength <= 1.0:
            raise ValueError(f"`warmup_strength` must be None or in [0, 1], got {self.warmup_strength!r}.")
        self.ops = list(self.ops)
        if not self.ops:
            raise ValueError("`ops` is empty: give at least one op, e.g. ['identity'].")
        unknown = sorted(set(self.ops) - set(OP_NAMES))
        if unknown:
            raise ValueError(f"`ops` has unknown names {unknown}; the op space is {list(OP_NAMES)}.")
        if isinstance(self.max_magnitudes, str):
            self.max_magnitudes = json.loads(self.max_magnitudes)
        self.max_magnitudes = dict(self.max_magnitudes or {})
        for name, value in self.max_magnitudes.items():
            if name not in MAGNITUDE_LIMITS:
                raise ValueError(
                    f"`max_magnitudes` names {name!r}, which has no magnitude; ops with one: {list(MAGNITUDE_LIMITS)}."
                )
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= MAGNITUDE_LIMITS[name]):
                raise ValueError(
                    f"`max_magnitudes[{name!r}]` must be in [0, {MAGNITUDE_LIMITS[name]}], got {value!r}."
                )
        if self.augmentation_seed is not None and (
            not isinstance(self.augmentation_seed, int) or self.augmentation_seed < 0
        ):
            raise ValueError(f"`augmentation_seed` must be None or an integer >= 0, got {self.augmentation_seed!r}.")

    @property
    def magnitudes(self) -> dict[str, float]:
        """Magnitude at strength 1 of every op with one: the defaults with `max_magnitudes` applied."""
        return {**DEFAULT_MAX_MAGNITUDES, **self.max_magnitudes}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SADAConfig:
        """Build from `to_dict()` output; unknown keys raise so that a mismatch is never silent."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown SADAConfig fields {unknown}; known fields: {sorted(known)}.")
        return cls(**values)


def _check_probe_every(probe_every: float) -> None:
    """1/n (n probes per epoch) or a whole number of epochs: probes then fall on fixed steps of every epoch."""
    valid = isinstance(probe_every, (int, float)) and math.isfinite(probe_every) and probe_every > 0
    if valid and probe_every < 1:
        valid = abs(1 / probe_every - round(1 / probe_every)) < 1e-6
    elif valid:
        valid = float(probe_every).is_integer()
    if not valid:
        raise ValueError(
            f"`probe_every` must be a whole number of epochs (1, 2, ...) or 1/n of an epoch (0.5, 0.25, ...), got "
            f"{probe_every!r}: probes then fall on the same steps of every epoch."
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")
