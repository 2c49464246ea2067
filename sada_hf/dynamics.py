"""Per-example training dynamics and the data map of Dataset Cartography (confidence, variability,
correctness) with the area under the margin (AUM): from the training steps in every run (the per-example
summary `sada_examples.parquet` a SADA run writes), and from the probes when the run had them (streamed to
Parquet, one file per probe and process).

    import datasets
    summary = datasets.load_dataset("parquet", data_files="OUTPUT_DIR/sada_examples.parquet")["train"]
    probes = datasets.load_dataset("parquet", data_files="OUTPUT_DIR/sada_dynamics/*.parquet")["train"]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .persistence import SUMMARY_FILE, read_parquet, write_parquet

DYNAMICS_DIR = "sada_dynamics"


def probe_rows(
    indices: torch.Tensor,
    labels: torch.Tensor,
    logits: torch.Tensor,
    influence: torch.Tensor,
    variance: torch.Tensor,
    strengths: torch.Tensor,
    probe: int,
    epoch: float,
) -> dict[str, np.ndarray]:
    """The columns of one probe: per example its gold-label probability and logit margin (gold logit
    minus the largest other one; AUM's margin), the predicted class, correctness, and the KL, V and
    strength that followed."""
    logits = logits.to(torch.float64)
    labels = labels.to(torch.int64)
    gold_logit = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    predicted = logits.argmax(dim=1)
    count = len(indices)
    return {
        "index": indices.numpy().astype(np.int64),
        "label": labels.numpy(),
        "probe": np.full(count, probe, dtype=np.int32),
        "epoch": np.full(count, epoch, dtype=np.float32),
        "gold_prob": torch.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1).to(torch.float32).numpy(),
        "margin": (gold_logit - others.max(dim=1).values).to(torch.float32).numpy(),
        "predicted": predicted.numpy(),
        "correct": (predicted == labels).numpy(),
        "influence": influence.to(torch.float32).numpy(),
        "variance": variance.to(torch.float32).numpy(),
        "strength": strengths.to(torch.float32).numpy(),
    }


def write_probe(output_dir: str | os.PathLike, columns: dict[str, np.ndarray], probe: int, rank: int = 0) -> Path:
    """Write one probe's rows to `output_dir/sada_dynamics/probe-PPPPP-rank-RRRRR.parquet`, atomically (a
    resumed run rewrites the same files with the same rows)."""
    return write_parquet(Path(output_dir) / DYNAMICS_DIR / f"probe-{probe:05d}-rank-{rank:05d}.parquet", columns)


def probe_statistics(output_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Per probed example (sorted by index), across all probes: `probes`, `probe_confidence` (mean gold-label
    probability), `probe_variability` (its standard deviation), `probe_correctness` (share of probes right),
    `probe_aum` (mean margin) and `probe_predicted` (at the last probe); None if the run wrote no probes."""
    directory = Path(output_dir) / DYNAMICS_DIR
    files = sorted(directory.glob("probe-*.parquet")) if directory.is_dir() else []
    if not files:
        return None
    column = read_parquet(files, ["index", "probe", "gold_prob", "margin", "predicted", "correct"])
    order = np.lexsort((column["probe"], column["index"]))  # by example, then by probe
    examples, starts, counts = np.unique(column["index"][order], return_index=True, return_counts=True)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.asarray(values, dtype=np.float64)[order], starts) / counts

    confidence = mean(column["gold_prob"])
    spread = mean(np.asarray(column["gold_prob"], dtype=np.float64) ** 2) - confidence**2
    return {
        "index": examples,
        "probes": counts,
        "probe_confidence": confidence,
        "probe_variability": np.sqrt(np.maximum(spread, 0.0)),
        "probe_correctness": mean(column["correct"]),
        "probe_aum": mean(column["margin"]),
        "probe_predicted": column["predicted"][order[starts + counts - 1]],
    }


def with_probe_statistics(summary: dict[str, np.ndarray], output_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """`summary` (`SADAState.summary()`, one row per example in index order) with the probe statistics of
    `output_dir` beside it when the run wrote probes (NaN, and 0 probes, for examples never probed)."""
    probes = probe_statistics(output_dir)
    if probes is None:
        return dict(summary)
    merged = dict(summary)
    rows = probes.pop("index")
    for name, values in probes.items():
        never = 0 if name == "probes" else (np.nan if values.dtype.kind == "f" else -1)
        merged[name] = np.full(len(summary["index"]), never, dtype=values.dtype)
        merged[name][rows] = values
    return merged


def data_map(output_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Per example (index order), the training dynamics of the run in `output_dir`: from its training steps
    `aum`, `confidence`, `variability`, `correctness`, `step_visits`, `predicted` (at the last visit), with
    its `label`, final `strength`, `variance` and `visits`; with probes also `probes`, `probe_aum`,
    `probe_confidence`, `probe_variability`, `probe_correctness` and `probe_predicted`.

    Raises `FileNotFoundError` naming the fix if `output_dir` is missing or holds no SADA summary, and
    `ValueError` naming the file if one is damaged."""
    directory = Path(output_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} does not exist: give the output_dir of a SADATrainer run.")
    summary = directory / SUMMARY_FILE
    if not summary.is_file():
        raise FileNotFoundError(
            f"No {SUMMARY_FILE} in {directory}: SADATrainer writes it there at the end of training (and with every "
            "saved model); was this folder written by a run with a SADATransform on its training dataset?"
        )
    return with_probe_statistics(read_parquet(summary), directory)
