"""Plots of a SADA run (matplotlib, no pyplot state): how the strength distribution evolves over
training (the paper's Figure 1 view of sample difficulty), the mean strength per class, and (with
probes) the data map of Dataset Cartography."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

STRENGTHS_PLOT = "sada_strengths.png"
CLASS_STRENGTHS_PLOT = "sada_class_strengths.png"
DATA_MAP_PLOT = "sada_data_map.png"
_MAP_POINTS = 20_000  # a data map of more examples shows a seeded sample of them


def plot_strength_history(history: Sequence[Any], num_examples: int, path: str | os.PathLike) -> None:
    """Heat map of the strength distribution after each publication (share of all examples per bin),
    its median and quartiles, and below it the share of examples still in warm-up."""
    epochs = np.array([entry.epoch for entry in history])
    shares = np.array([entry.histogram for entry in history], dtype=float).T / num_examples  # bins x publications
    bins = shares.shape[0]
    half_step = 0.5 * (np.min(np.diff(epochs)) if len(epochs) > 1 else 1.0)

    figure = Figure(figsize=(8, 5.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    image = top.imshow(
        shares,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(epochs[0] - half_step, epochs[-1] + half_step, 0, 1),
        vmin=0,
    )
    figure.colorbar(image, ax=top, label="share of examples")
    defined = [e for e in history if e.strength_median is not None]
    if defined:
        x = [e.epoch for e in defined]
        top.plot(x, [e.strength_median for e in defined], color="white", lw=2, label="median")
        top.plot(x, [e.strength_q25 for e in defined], color="white", lw=1, ls="--", label="quartiles")
        top.plot(x, [e.strength_q75 for e in defined], color="white", lw=1, ls="--")
        top.legend(loc="upper left", fontsize=8, facecolor="0.3", labelcolor="white")
    top.set_ylabel(f"strength ({bins} bins)")
    top.set_title("SADA strength per example, at each publication")
    bottom.bar(epochs, [e.warmup_fraction for e in history], color="0.5", width=1.6 * half_step)
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


def plot_data_map(statistics: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Dataset Cartography's data map from the probes: mean gold-label confidence against its
    variability, coloured by correctness, the marker size showing the final strength. Low confidence
    and low variability (bottom left) is where mislabelled examples gather; high variability is
    ambiguous; high confidence, low variability is easy."""
    count = len(statistics["index"])
    rows = np.arange(count)
    if count > _MAP_POINTS:
        rows = np.sort(np.random.default_rng(0).choice(count, _MAP_POINTS, replace=False))
    strength = np.nan_to_num(statistics["strength"][rows], nan=0.5)
    figure = Figure(figsize=(7, 6), layout="constrained")
    axes = figure.subplots()
    points = axes.scatter(
        statistics["variability"][rows],
        statistics["confidence"][rows],
        c=statistics["correctness"][rows],
        s=4 + 30 * strength,
        cmap="coolwarm_r",
        vmin=0,
        vmax=1,
        alpha=0.6,
        linewidths=0,
    )
    figure.colorbar(points, ax=axes, label="correctness (share of probes right)")
    axes.set_xlabel("variability (std of the gold-label probability across probes)")
    axes.set_ylabel("confidence (mean gold-label probability)")
    axes.set_ylim(0, 1)
    shown = f"{len(rows):,} of {count:,} examples" if len(rows) < count else f"{count:,} examples"
    axes.set_title(f"Data map from the probes ({shown}; marker size: final strength)")
    figure.savefig(path, dpi=120)
