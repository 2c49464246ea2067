"""Per-example training dynamics from the probes, streamed to Parquet (one file per probe and process),
and the data-map statistics read back from them (Dataset Cartography: confidence, variability,
correctness across probes).

    import datasets
    dynamics = datasets.load_dataset("parquet", data_files="OUTPUT_DIR/sada_dynamics/*.parquet")["train"]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .persistence import atomic_write

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
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(output_dir) / DYNAMICS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"probe-{probe:05d}-rank-{rank:05d}.parquet"
    atomic_write(path, lambda p: pq.write_table(pa.table(columns), p))
    return path


def data_map(output_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Per example (sorted by index), across all probes: `confidence` (mean gold-label probability),
    `variability` (its standard deviation), `correctness` (share of probes right), `aum` (mean margin,
    Pleiss et al.'s area under the margin), and from the last probe the `label`, the `predicted` class
    and the `strength` that followed. Raises `FileNotFoundError` naming the fix if the run wrote
    no dynamics."""
    import pyarrow.parquet as pq

    directory = Path(output_dir) / DYNAMICS_DIR
    files = sorted(directory.glob("probe-*.parquet")) if directory.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"No probe dynamics in {directory}: train with `influence='probe'` (and `save_dynamics=True`, the "
            "default) to write them."
        )
    columns = ["index", "label", "probe", "gold_prob", "margin", "predicted", "correct", "strength"]
    table = pq.read_table(files, columns=columns)
    column = {name: np.asarray(table[name].to_numpy(zero_copy_only=False)) for name in table.column_names}
    order = np.lexsort((column["probe"], column["index"]))  # by example, then by probe
    index = column["index"][order]
    examples, starts, counts = np.unique(index, return_index=True, return_counts=True)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(np.asarray(values, dtype=np.float64)[order], starts) / counts

    confidence = mean(column["gold_prob"])
    spread = mean(np.asarray(column["gold_prob"], dtype=np.float64) ** 2) - confidence**2
    last = order[starts + counts - 1]
    return {
        "index": examples,
        "probes": counts,
        "confidence": confidence,
        "variability": np.sqrt(np.maximum(spread, 0.0)),
        "correctness": mean(column["correct"]),
        "aum": mean(column["margin"]),
        "label": column["label"][last],
        "predicted": column["predicted"][last],
        "strength": np.asarray(column["strength"], dtype=np.float64)[last],
    }
