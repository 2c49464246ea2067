"""The job's metrics: the shipped metric modules load offline; shot accuracy only on long-tailed data."""

from __future__ import annotations

import evaluate
import numpy as np
from transformers import EvalPrediction

from sada_hf.evaluation import FEW_SHOT_BELOW, MANY_SHOT_ABOVE, METRICS, build_compute_metrics, shot_groups


def test_metric_modules_load_offline_and_compute_by_hand():
    accuracy = evaluate.load(str(METRICS / "accuracy"))
    assert accuracy.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]) == {"accuracy": 0.75}
    shots = evaluate.load(str(METRICS / "shot_accuracy"))
    # classes 0: 150 images (many), 1: 50 (medium), 2: 5 (few)
    result = shots.compute(
        predictions=[0, 0, 1, 0, 2, 0],
        references=[0, 0, 1, 1, 2, 2],
        train_class_counts=[150, 50, 5],
        many_shot_threshold=MANY_SHOT_ABOVE,
        few_shot_threshold=FEW_SHOT_BELOW,
    )
    assert result == {"many_shot_accuracy": 1.0, "medium_shot_accuracy": 0.5, "few_shot_accuracy": 0.5}


def test_compute_metrics_adds_shot_accuracy_only_for_long_tailed_data():
    logits = np.eye(3)[[0, 1, 2, 0]]
    prediction = EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 2, 2]))
    balanced = build_compute_metrics(np.repeat([0, 1, 2], 120), 3)(prediction)
    assert balanced == {"accuracy": 0.75}
    tailed = build_compute_metrics(np.repeat([0, 1, 2], [300, 60, 10]), 3)(prediction)
    assert tailed["few_shot_accuracy"] == 0.5 and tailed["many_shot_accuracy"] == 1.0


def test_shot_groups_at_their_bounds():
    assert shot_groups([101, 100, 20, 19]) == ["many", "medium", "medium", "few"]
