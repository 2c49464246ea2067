"""Every strategy in one table: its strengths at reset, its strengths at each publication, and
whether the transform applies an op at all. `SADAConfig.strategy` names a row."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .strengths import random_strengths, shuffled_strengths, variance_strengths


@dataclass(frozen=True)
class Strategy:
    """How one strategy chooses strengths.

    Attributes:
        help: one line for `--help`, the README and the model card.
        at_reset: strengths published when a run starts (NaN: the warm-up behaviour).
        at_publication: new strengths from the per-example vectors every process holds (`Examples`: V,
            visits, certainty) after each epoch end or probe; None keeps what is published.
        applies_op: False for 'none' (base augmentation only).
        uses_certainty: `at_publication` reads `Examples.certainty` (N x K work at each publication, so it
            is computed only for the strategies that read it).
    """

    help: str
    at_reset: Callable[[int, torch.Generator], torch.Tensor]
    at_publication: Callable[..., torch.Tensor] | None
    applies_op: bool = True
    uses_certainty: bool = False


def _undefined(num_examples: int, generator: torch.Generator) -> torch.Tensor:
    return torch.full((num_examples,), math.nan, dtype=torch.float32)


def _sada(examples, config, generator: torch.Generator) -> torch.Tensor:
    return variance_strengths(examples.variance, config.normalization, config.direction)


def _sada_shuffled(examples, config, generator: torch.Generator) -> torch.Tensor:
    return shuffled_strengths(_sada(examples, config, generator), generator)


def _entropy(examples, config, generator: torch.Generator) -> torch.Tensor:
    return examples.certainty.clone()


STRATEGIES: dict[str, Strategy] = {
    "sada": Strategy("the paper: strength from the variance of each example's influence", _undefined, _sada),
    "sada_shuffled": Strategy(
        "control: SADA's strengths permuted across examples at each publication (same amounts, assignment destroyed)",
        _undefined,
        _sada_shuffled,
    ),
    "entropy": Strategy(
        "1 - entropy / log K of the last prediction (EntAugment-style)", _undefined, _entropy, uses_certainty=True
    ),
    "random": Strategy("one fixed uniform strength per example, drawn at the start", random_strengths, None),
    "trivialaugment": Strategy("every visit uses the warm-up strength (a fresh uniform draw)", _undefined, None),
    "none": Strategy("no SADA op, base augmentation only", _undefined, None, applies_op=False),
}
