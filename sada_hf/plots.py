"""Plots of a SADA run (matplotlib, no pyplot state): how the strengths relate to difficulty over
training and how stable the assignment is, the mean strength per class, and the data map of Dataset
Cartography from the training steps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .persistence import atomic_write

STRENGTHS_PLOT = "sada_strengths.png"
CLASS_STRENGTHS_PLOT = "sada_class_strengths.png"
DATA_MAP_PLOT = "sada_data_map.png"
_MAP_POINTS = 20_000  # a data map of more examples shows a seeded sample of them


def plot_strength_history(history: Sequence[Any], path: str | os.PathLike) -> None:
    """How the assignment relates to difficulty and how stable it is, one point per publication: the mean
    strength of the examples whose last training step got them right and of those it got wrong (a gap
    means the strengths follow difficulty), the Spearman correlation of each publication's strengths with
    the previous one's, and the share of examples still in warm-up."""
    epochs = [entry.epoch for entry in history]
    figure = Figure(figsize=(8, 6), layout="constrained")
    top, middle, bottom = figure.subplots(3, 1, sharex=True, height_ratios=[3, 2, 1])
    for name, label, style in (
        ("strength_mean_right", "examples predicted right", "tab:blue"),
        ("strength_mean_wrong", "examples predicted wrong", "tab:red"),
        ("strength_mean", "all examples", "0.4"),
    ):
        values = [np.nan if getattr(e, name) is None else getattr(e, name) for e in history]
        top.plot(epochs, values, marker=".", color=style, label=label, ls="--" if name == "strength_mean" else "-")
    top.set_ylim(0, 1)
    top.set_ylabel("mean strength")
    top.legend(fontsize=8, loc="best")
    top.set_title("SADA strengths at each publication (right / wrong: the example's last training step)")
    correlation = [np.nan if e.rank_correlation is None else e.rank_correlation for e in history]
    middle.plot(epochs, correlation, marker=".", color="tab:green")
    middle.set_ylim(-1.05, 1.05)
    middle.axhline(0, color="0.7", lw=0.8)
    middle.set_ylabel("Spearman with\nprevious")
    width = 0.8 * (min(np.diff(epochs)) if len(epochs) > 1 else 1.0)
    bottom.bar(epochs, [e.warmup_fraction for e in history], color="0.5", width=width)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("in warm-up")
    bottom.set_xlabel("epoch")
    save_figure(figure, path, dpi=120)


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
    save_figure(figure, path, dpi=120)


def plot_data_map(statistics: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Dataset Cartography's data map from the training steps: mean gold-label confidence against its
    variability, coloured by correctness, the marker size showing the final strength. Low confidence
    and low variability (bottom left) is where mislabelled examples gather; high variability is
    ambiguous; high confidence, low variability is easy."""
    visited = np.flatnonzero(statistics["step_visits"] > 0)
    rows = visited
    if len(visited) > _MAP_POINTS:
        rows = np.sort(np.random.default_rng(0).choice(visited, _MAP_POINTS, replace=False))
    strength = np.nan_to_num(np.asarray(statistics["strength"], dtype=float)[rows], nan=0.5)
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
    figure.colorbar(points, ax=axes, label="correctness (share of training steps right)")
    axes.set_xlabel("variability (std of the gold-label probability across epochs)")
    axes.set_ylabel("confidence (mean gold-label probability)")
    axes.set_ylim(0, 1)
    shown = f"{len(rows):,} of {len(visited):,} examples" if len(rows) < len(visited) else f"{len(rows):,} examples"
    axes.set_title(f"Data map from the training steps ({shown}; marker size: final strength)")
    save_figure(figure, path, dpi=120)


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int) -> None:
    """Write `figure` as a PNG at `path`, atomically: a run killed while drawing leaves the old file or none."""
    atomic_write(Path(path), lambda temporary: figure.savefig(temporary, dpi=dpi, format="png"))
