"""`compute_metrics` for the main job, from the metric modules shipped in `sada_hf/metrics` (they load
offline): accuracy, and on long-tailed data many/medium/few-shot accuracy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import evaluate
import numpy as np
from transformers import EvalPrediction

METRICS = Path(__file__).parent / "metrics"
# Shot groups (ImageNet-LT, Liu et al. 2019): many > 100, medium 20-100, few < 20 training images per class.
MANY_SHOT_ABOVE = 100
FEW_SHOT_BELOW = 20


def shot_groups(train_class_counts: np.ndarray) -> list[str]:
    """The shot group of each class from its number of training images."""
    return [
        "many" if count > MANY_SHOT_ABOVE else "few" if count < FEW_SHOT_BELOW else "medium"
        for count in train_class_counts
    ]


def build_compute_metrics(train_labels: np.ndarray, num_labels: int) -> Callable[[EvalPrediction], dict[str, float]]:
    """`compute_metrics` for the Trainer: accuracy, and many/medium/few-shot accuracy when the training
    classes span more than one shot group (long-tailed data), from the metric modules shipped with
    sada_hf (they load offline)."""
    accuracy = evaluate.load(str(METRICS / "accuracy"))
    shot_accuracy = evaluate.load(str(METRICS / "shot_accuracy"))
    counts = np.bincount(np.asarray(train_labels), minlength=num_labels)
    long_tailed = len(set(shot_groups(counts))) > 1

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        predictions = np.argmax(prediction.predictions, axis=1)
        metrics = accuracy.compute(predictions=predictions, references=prediction.label_ids)
        if long_tailed:
            metrics.update(
                shot_accuracy.compute(
                    predictions=predictions,
                    references=prediction.label_ids,
                    train_class_counts=counts.tolist(),
                    many_shot_threshold=MANY_SHOT_ABOVE,
                    few_shot_threshold=FEW_SHOT_BELOW,
                )
            )
        return metrics

    return compute_metrics
