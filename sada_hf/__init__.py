"""SADA (Sample-Aware Dynamic Augmentation) for the Hugging Face stack.

Swap `transformers.Trainer` for `SADATrainer` and set a `SADATransform` on the training dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import SADAConfig
from .decisions import apply_decisions
from .dynamics import data_map
from .label_issues import label_issues
from .state import SADAState, StrengthStatistics
from .transform import EvalTransform, SADATransform

if TYPE_CHECKING:
    from .trainer import SADATrainer, TransformEpochCallback

__version__ = "0.4.0"  # also the package metadata's (pyproject.toml reads it); CHANGELOG.md says what changed

__all__ = [
    "EvalTransform",
    "SADAConfig",
    "SADAState",
    "SADATrainer",
    "SADATransform",
    "StrengthStatistics",
    "TransformEpochCallback",
    "apply_decisions",
    "data_map",
    "label_issues",
]

# The trainer imports transformers.Trainer (seconds). Dataloader workers started with spawn import
# this package to unpickle a SADATransform; loading the trainer on first use keeps them light.
_LAZY = {"SADATrainer": "trainer", "TransformEpochCallback": "trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
