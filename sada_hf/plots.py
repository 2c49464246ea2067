"""Plots of a SADA run (matplotlib, no pyplot state): how the strength distribution evolves over
epochs (the paper's Figure 1 view of sample difficulty), and the mean strength per class."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

STRENGTHS_PLOT = "sada_strengths.png"
CLASS_STRENGTHS_PLOT = "sada_class_strengths.png"


def plot_strength_history(history: Sequence[dict[str, Any]], num_examples: int, path: str | os.PathLike) -> None:
    """Heat map of the strength distribution after each epoch (share of all examples per bin), its
    median and quartiles, and below it the share of examples still in warm-up."""
    epochs = np.array([entry["epoch"] for entry in history])
    shares = np.array([entry["histogram"] for entry in history], dtype=float).T / num_examples  # bins x epochs
    bins = shares.shape[0]

    figure = Figure(figsize=(8, 5.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    image = top.imshow(
        shares,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(epochs[0] - 0.5, epochs[-1] + 0.5, 0, 1),
        vmin=0,
    )
    figure.colorbar(image, ax=top, label="share of examples")
    defined = [e for e in history if e.get("strength_median") is not None]
    if defined:
        x = [e["epoch"] for e in defined]
        top.plot(x, [e["strength_median"] for e in defined], color="white", lw=2, label="median")
        top.plot(x, [e["strength_q25"] for e in defined], color="white", lw=1, ls="--", label="quartiles")
        top.plot(x, [e["strength_q75"] for e in defined], color="white", lw=1, ls="--")
        top.legend(loc="upper left", fontsize=8, facecolor="0.3", labelcolor="white")
    top.set_ylabel(f"strength ({bins} bins)")
    top.set_title("SADA strength per example, published at each epoch end")
    bottom.bar(epochs, [e["warmup_fraction"] for e in history], color="0.5", width=0.8)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("in warm-up")
    bottom.set_xlabel("epoch")
    figure.savefig(path, dpi=120)


def class_strengths(strengths: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the strength per class, over examples that have one (NaN for
    a class with none)."""
    strengths, labels = np.asarray(strengths, dtype=float), np.asarray(labels)
    defined = ~np.isnan(strengths)
    means, stds = np.full(num_classes, np.nan), np.full(num_classes, np.nan)
    for c in range(num_classes):
        members = strengths[defined & (labels == c)]
        if members.size:
            means[c], stds[c] = members.mean(), members.std()
    return means, stds


def plot_class_strengths(
    strengths: np.ndarray, labels: np.ndarray, class_names: Sequence[str], path: str | os.PathLike
) -> None:
    """Mean strength per class (bars, with the standard deviation) over examples that have one."""
    means, stds = class_strengths(strengths, labels, len(class_names))
    defined = ~np.isnan(np.asarray(strengths, dtype=float))

    figure = Figure(figsize=(max(6, 0.35 * len(class_names) + 2), 4), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(class_names))
    axes.bar(positions, means, yerr=stds, capsize=3, color="tab:blue", alpha=0.8)
    if defined.any():
        axes.axhline(
            np.asarray(strengths, dtype=float)[defined].mean(), color="black", lw=1, ls="--", label="all examples"
        )
        axes.legend(fontsize=8, loc="lower right")
    rotate = len(class_names) > 10
    axes.set_xticks(positions, labels=class_names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    axes.set_ylim(0, 1)
    axes.set_xlabel("class")
    axes.set_ylabel("mean strength")
    axes.set_title("Final SADA strength per class (mean and std)")
    figure.savefig(path, dpi=120)
