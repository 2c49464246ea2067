"""Workarounds for upstream bugs. Each names its issue and does nothing once the bug is gone."""

from __future__ import annotations

import json
import os

from safetensors import safe_open
from transformers import PreTrainedModel
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, logging

logger = logging.get_logger(__name__)


def reload_renamed_weights(model: object, checkpoint: str) -> bool:
    """Reload `model`'s weights from `checkpoint` through `from_pretrained` if the checkpoint's keys
    are not the model's own.

    huggingface/transformers#43701: `save_pretrained` writes some models (ViT in 5.x) with legacy key
    names (`vit.encoder.layer.N.*`) while the model's keys are `vit.layers.N.*`, and
    `Trainer._load_from_checkpoint` loads the raw state dict with `strict=False`, so a resumed ViT
    silently keeps a freshly initialised encoder. `from_pretrained` converts the keys. Returns
    whether a reload happened; once upstream loads through the conversion, it never does.
    """
    if not isinstance(model, PreTrainedModel):
        return False
    saved = _saved_keys(checkpoint)
    if saved is None or saved <= set(model.state_dict()):
        return False
    loaded, info = type(model).from_pretrained(
        checkpoint, config=model.config, dtype=model.dtype, output_loading_info=True
    )
    if info["missing_keys"] or info["mismatched_keys"]:
        raise RuntimeError(
            f"Could not restore the model from {checkpoint}: missing {sorted(info['missing_keys'])}, "
            f"mismatched {sorted(info['mismatched_keys'])}."
        )
    model.load_state_dict(loaded.state_dict())
    logger.warning(
        f"Reloaded {type(model).__name__} weights from {checkpoint} through from_pretrained: the checkpoint's keys "
        "are renamed on save (transformers#43701), so any 'missing keys' warning above is resolved."
    )
    return True


def _saved_keys(checkpoint: str) -> set[str] | None:
    """Tensor names in a checkpoint's safetensors weights (single file or sharded), None if there are none."""
    single = os.path.join(checkpoint, SAFE_WEIGHTS_NAME)
    if os.path.isfile(single):
        with safe_open(single, framework="pt") as handle:
            return set(handle.keys())
    index = os.path.join(checkpoint, SAFE_WEIGHTS_INDEX_NAME)
    if os.path.isfile(index):
        with open(index) as handle:
            return set(json.load(handle)["weight_map"])
    return None
