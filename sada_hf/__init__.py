"""SADA (Sample-Aware Dynamic Augmentation) for the Hugging Face stack.

Swap `transformers.Trainer` for `SADATrainer` and set a `SADATransform` on the training dataset.
"""

from .config import SADAConfig
from .state import SADAState
from .trainer import SADATrainer, TransformEpochCallback
from .transform import EvalTransform, SADATransform

__version__ = "0.1.0"

__all__ = [
    "EvalTransform",
    "SADAConfig",
    "SADAState",
    "SADATrainer",
    "SADATransform",
    "TransformEpochCallback",
]
