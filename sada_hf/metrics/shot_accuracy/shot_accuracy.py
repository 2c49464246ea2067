"""Many-, medium- and few-shot accuracy for long-tailed classification, as an `evaluate` metric
module shipped with sada_hf (loads offline).

Classes are grouped by their number of training images, as in the ImageNet-LT protocol (Liu et al.,
2019, "Large-Scale Long-Tailed Recognition in an Open World"): many-shot above `many_shot_threshold`,
medium-shot from `few_shot_threshold` to it, few-shot below `few_shot_threshold` (the bounds the caller
passes; sada_hf's live in `sada_hf.evaluation`). Each group's accuracy is the mean over its test
examples; a group with no class is left out of the result.
"""

import datasets
import evaluate
import numpy as np


class ShotAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Accuracy over the classes with many (>100), medium (20-100) and few (<20) training images.",
            citation="Liu et al., Large-Scale Long-Tailed Recognition in an Open World, CVPR 2019.",
            inputs_description=(
                "predictions, references: class ids (int); train_class_counts: training images per class id; "
                "many_shot_threshold and few_shot_threshold: the group bounds (sada_hf.evaluation: 100 and 20)."
            ),
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, train_class_counts, many_shot_threshold, few_shot_threshold):
        predictions, references = np.asarray(predictions), np.asarray(references)
        counts = np.asarray(train_class_counts)
        shots = counts[references]
        groups = {
            "many_shot_accuracy": shots > many_shot_threshold,
            "medium_shot_accuracy": (shots >= few_shot_threshold) & (shots <= many_shot_threshold),
            "few_shot_accuracy": shots < few_shot_threshold,
        }
        correct = predictions == references
        return {name: float(correct[members].mean()) for name, members in groups.items() if members.any()}
