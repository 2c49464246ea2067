"""SADA's file formats: the resumable state in checkpoints, and the per-example summary that goes with a
saved model. Safetensors, JSON and Parquet only (never pickle); every write is atomic.

A checkpoint holds `sada_state.safetensors` (what every process holds: metadata, schedule, per-example V
and visits, and with one process the store too) and, when W > 1 processes share the store, one shard
file per process (`sada_state-rank-RRRRR-of-WWWWW.safetensors`: the store rows that process owns)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

STATE_FILE = "sada_state.safetensors"
CONFIG_FILE = "sada_config.json"
SUMMARY_FILE = "sada_examples.parquet"
FORMAT = "sada_hf.state"
FORMAT_VERSION = 3  # 3: sharded stores (sada_hf 0.3); 2 (sada_hf 0.2, one process' whole store) still reads
_READABLE_VERSIONS = ("2", "3")


def write_state(directory: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write the resumable state (`sada_state.safetensors`, tensors plus JSON metadata) and a readable copy
    of the metadata (`sada_config.json`) into `directory`, each atomically."""
    _write_tensors(Path(directory) / STATE_FILE, tensors, metadata)
    write_config(directory, metadata)


def shard_file(rank: int, world_size: int) -> str:
    """The name of the store shard of process `rank` of `world_size`."""
    return f"sada_state-rank-{rank:05d}-of-{world_size:05d}.safetensors"


def write_shard(directory: str | os.PathLike, rank: int, world_size: int, tensors: dict[str, torch.Tensor]) -> None:
    """Write the store rows process `rank` of `world_size` owns, atomically."""
    _write_tensors(Path(directory) / shard_file(rank, world_size), tensors, {"rank": rank, "world_size": world_size})


def read_shard(directory: str | os.PathLike, rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """The tensors of a shard written by `write_shard`; `ValueError` naming the file if it is missing."""
    path = Path(directory) / shard_file(rank, world_size)
    if not path.is_file():
        raise ValueError(
            f"The SADA state in {directory} was saved by {world_size} processes, but the shard of rank {rank} ({path.name}) "
            "is missing: that process did not finish writing it, or the checkpoint folder is not on storage every "
            "process shares. Resume from another checkpoint."
        )
    return _read_tensors(path)[0]


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "metadata": json.dumps(metadata)}
    tensors = {name: tensor.contiguous() for name, tensor in tensors.items()}
    atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=header))


def write_config(directory: str | os.PathLike, metadata: dict[str, Any]) -> None:
    readable = {k: v for k, v in metadata.items() if k != "history"}
    atomic_write(Path(directory) / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(readable, indent=2) + "\n"))


def read_state(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata written by `write_state`. Raises `FileNotFoundError` if there is none,
    `ValueError` naming the file and the fix if it is corrupt or of another format version."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No SADA state at {path}.")
    return _read_tensors(path)


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise ValueError(
            f"The SADA state {path} is truncated or corrupt ({type(error).__name__}: {error}). Resume from an "
            "earlier checkpoint, or delete the file to continue with a fresh SADA state."
        ) from error
    if header.get("format") != FORMAT or header.get("format_version") not in _READABLE_VERSIONS:
        raise ValueError(
            f"{path} is not a SADA state of format version {' or '.join(_READABLE_VERSIONS)} (format "
            f"{header.get('format')!r}, version {header.get('format_version')!r}; version 1 was written by sada_hf "
            "0.1). Resume it with the sada_hf release that wrote it, or delete the file to continue with a fresh "
            "SADA state."
        )
    try:
        metadata = json.loads(header["metadata"])
    except (KeyError, ValueError) as error:
        raise ValueError(f"The SADA state {path} has unreadable metadata ({error}).") from error
    return tensors, metadata


def write_summary(directory: str | os.PathLike, columns: dict[str, np.ndarray]) -> None:
    """One row per training example (`sada_examples.parquet`), loadable with
    `datasets.load_dataset("parquet", data_files=...)`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: np.asarray(values) for name, values in columns.items()})
    Path(directory).mkdir(parents=True, exist_ok=True)
    atomic_write(Path(directory) / SUMMARY_FILE, lambda path: pq.write_table(table, path))


def atomic_write(path: Path, write: Callable[[str], Any]) -> None:
    """Write through `write(temporary_path)` then rename over `path`: readers see the old or the new file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
