"""Label-error suspects from the probes' training dynamics (no extra training, no extra pass): every
training example ranked by its area under the margin (AUM: the mean, over probes, of its given
label's logit minus the largest other logit), with Dataset Cartography's confidence, variability and
correctness beside it, and a contact sheet of the top suspects to look at."""

from __future__ import annotations

import os
from collections.abc import Sequence

import datasets
import numpy as np

from .dynamics import data_map

SHEET = "sada_label_issues.png"
# The given label was, on average over the probes, not the model's top class. Measured (README, label
# errors): on CIFAR-10 with 20% flipped labels it catches 94% of the flips and over-flags in short runs.
AUM_THRESHOLD = 0.0


def label_issues(output_dir: str | os.PathLike, threshold: float = AUM_THRESHOLD) -> datasets.Dataset:
    """Every probed training example, most suspicious first (lowest AUM), with `index` (the row in the
    training dataset), `given_label`, `predicted_label` (at the last probe), `aum`, `confidence`,
    `variability`, `correctness`, `probes` and `suspect` (AUM below `threshold`).

    Raises `FileNotFoundError` naming the fix if `output_dir` holds no probe dynamics."""
    return rank_label_issues(data_map(output_dir), threshold)


def rank_label_issues(stats: dict[str, np.ndarray], threshold: float = AUM_THRESHOLD) -> datasets.Dataset:
    """`label_issues` from `data_map` statistics already read (the dynamics files are read once)."""
    order = np.argsort(stats["aum"], kind="stable")
    return datasets.Dataset.from_dict(
        {
            "index": stats["index"][order],
            "given_label": stats["label"][order],
            "predicted_label": stats["predicted"][order],
            "aum": stats["aum"][order],
            "confidence": stats["confidence"][order],
            "variability": stats["variability"][order],
            "correctness": stats["correctness"][order],
            "probes": stats["probes"][order],
            "suspect": stats["aum"][order] < threshold,
        }
    )


def contact_sheet(
    images: Sequence,
    issues: datasets.Dataset,
    class_names: Sequence[str],
    path: str | os.PathLike,
    columns: int = 8,
) -> None:
    """A PNG grid of the `issues` rows given (typically the top K), each image titled with its index,
    given label and predicted label. `images[i]` is the training image at dataset row i (a PIL image
    or an image cell)."""
    from matplotlib.figure import Figure

    from .transform import to_rgb

    count = len(issues)
    if count == 0:
        raise ValueError("No suspects to show: `issues` is empty.")
    rows = -(-count // columns)
    figure = Figure(figsize=(1.6 * min(columns, count), 1.9 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, min(columns, count))).ravel()
    for position, axis in enumerate(axes):
        axis.set_axis_off()
        if position >= count:
            continue
        row = issues[position]
        axis.imshow(to_rgb(images[int(row["index"])]))
        given, predicted = class_names[row["given_label"]], class_names[row["predicted_label"]]
        axis.set_title(f"#{row['index']}\ngiven: {given}\npredicted: {predicted}", fontsize=7)
    figure.suptitle("Label-issue suspects, lowest AUM first", fontsize=9)
    figure.savefig(path, dpi=110)
