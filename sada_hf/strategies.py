"""Every strategy in one table: its strengths at reset, its strengths at each publication, and
whether the transform applies an op at all. `SADAConfig.strategy` names a row."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .strengths import instability_strengths, random_strengths, shuffled_strengths


@dataclass(frozen=True)
class Examples:
    """The per-example vectors a strategy chooses strengths from, N long, identical on every process.

    Attributes:
        variance: float32, SADA's EMA V of the influence (NaN: undefined).
        visits: int32, visits stored in the influence store.
        certainty: float32, 1 - H(p) / log K of the last prediction (NaN: never visited, or not computed).
        aum: float32, the area under the margin of the training steps so far (NaN: never visited).
    """

    variance: torch.Tensor
    visits: torch.Tensor
    certainty: torch.Tensor
    aum: torch.Tensor


@dataclass(frozen=True)
class Strategy:
    """How one strategy chooses strengths.

    Attributes:
        help: one line for `--help`, the docs and the model card.
        at_reset: strengths published when a run starts (NaN: the warm-up behaviour).
        at_publication: new strengths from `Examples` after each epoch end or probe; None keeps what is
            published.
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


def _sada(examples: Examples, config, generator: torch.Generator) -> torch.Tensor:
    return instability_strengths(examples.variance, config.normalization, config.direction)


def _margin(examples: Examples, config, generator: torch.Generator) -> torch.Tensor:
    return instability_strengths(-examples.aum, config.normalization, config.direction)


def _shuffled(strategy: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def shuffled(examples: Examples, config, generator: torch.Generator) -> torch.Tensor:
        return shuffled_strengths(strategy(examples, config, generator), generator)

    return shuffled


def _entropy(examples: Examples, config, generator: torch.Generator) -> torch.Tensor:
    return examples.certainty.clone()


_CONTROL = "permuted across examples at each publication (same amounts, assignment destroyed)"
STRATEGIES: dict[str, Strategy] = {
    "sada": Strategy("the paper: strength from the variance of each example's influence", _undefined, _sada),
    "sada_shuffled": Strategy(f"control: SADA's strengths {_CONTROL}", _undefined, _shuffled(_sada)),
    "margin": Strategy(
        "strength from each example's area under the margin (its mean training-step margin so far; free): "
        "'stable_strong' augments high-margin (easy) examples strongly, 'unstable_strong' low-margin (hard) ones",
        _undefined,
        _margin,
    ),
    "margin_shuffled": Strategy(
        f"control: the margin strategy's strengths {_CONTROL}", _undefined, _shuffled(_margin)
    ),
    "entropy": Strategy(
        "1 - entropy / log K of the last prediction (EntAugment-style)", _undefined, _entropy, uses_certainty=True
    ),
    "random": Strategy("one fixed uniform strength per example, drawn at the start", random_strengths, None),
    "trivialaugment": Strategy("every visit uses the warm-up strength (a fresh uniform draw)", _undefined, None),
    "none": Strategy("no SADA op, base augmentation only", _undefined, None, applies_op=False),
}
