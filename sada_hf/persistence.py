"""SADA's file formats: the resumable state in checkpoints, and the per-example summary that goes with a
saved model. Safetensors, JSON and Parquet only (never pickle); every write is atomic.

A checkpoint holds `sada_state.safetensors` (what every process holds: metadata, schedule, per-example
vectors, and with one process the row stores too) and, when W > 1 processes share the row stores, one
shard file per process (`sada_state-rank-RRRRR-of-WWWWW.safetensors`: the rows that process owns).

Format versions: 4 (sada_hf 0.4) adds the training-step margins, and since 0.5 may hold the label overrides
of a run that acts on label issues (absent: every label kept); 3 (0.3: sharded stores) and 2 (0.2: one
process's whole store, no per-example copies) still load, their margins starting empty.
"""

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

from .sharding import Shard

STATE_FILE = "sada_state.safetensors"
CONFIG_FILE = "sada_config.json"
SUMMARY_FILE = "sada_examples.parquet"
# The per-example summary's columns (docs/usage.md lists them): 2 (sada_hf 0.5) adds `row` and `id` (the
# example in the user's dataset), `suggested` and `training_label`; 1 had none of them. In the Parquet
# file's metadata.
SUMMARY_VERSION = 2
SUMMARY_METADATA = {"sada_hf.summary_version": str(SUMMARY_VERSION)}
FORMAT = "sada_hf.state"
FORMAT_VERSION = 4
# The row stores each readable version holds.
_ROW_STORES = {"2": ("store",), "3": ("store",), "4": ("store", "margins")}
# A SADA state as `SADAState.state_dict()` gives it and `read_state` returns it: "metadata" (JSON), "shared"
# (tensors every process holds, by name), "rows" (per row store: its tensors, or when read from a checkpoint
# its saved shards as (Shard, reader) pairs, read one at a time).
State = dict[str, Any]
Sources = list[tuple[Shard, Callable[[], dict[str, torch.Tensor]]]]


def shard_file(rank: int, world_size: int) -> str:
    """The name of the row-store shard of process `rank` of `world_size`."""
    return f"sada_state-rank-{rank:05d}-of-{world_size:05d}.safetensors"


def write_state(directory: str | os.PathLike, state: State, shard: Shard, write_shared: bool = True) -> None:
    """Write `state` into `directory`: with W > 1 processes this process's rows to its shard file (every
    process calls this), and if `write_shared` (one process) what every process holds, plus a readable
    copy of the metadata (`sada_config.json`). Each file atomically."""
    rows = {f"{store}.{name}": t for store, tensors in state["rows"].items() for name, t in tensors.items()}
    sharded = shard.world_size > 1
    if sharded:
        path = Path(directory) / shard_file(shard.rank, shard.world_size)
        _write_tensors(path, rows, {"rank": shard.rank, "world_size": shard.world_size})
    if write_shared:
        tensors = dict(state["shared"]) if sharded else {**state["shared"], **rows}
        _write_tensors(Path(directory) / STATE_FILE, tensors, state["metadata"])
        write_config(directory, state["metadata"])


def read_state(directory: str | os.PathLike) -> State:
    """The state in `directory`, in `SADAState.state_dict()`'s layout with each row store as its saved
    shards (a store the file's version did not have is absent). Raises `FileNotFoundError` if there is
    no state, `ValueError` naming the file and the fix if it is corrupt or of another format version."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No SADA state at {path}.")
    tensors, metadata, version = _read_tensors(path)
    metadata.setdefault("world_size", 1)  # version 2: one process
    try:
        world_size, num_examples = int(metadata["world_size"]), int(metadata["num_examples"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"The SADA state {path} has incomplete metadata ({error!r}).") from error
    stores = _ROW_STORES[version]
    shared = {name: t for name, t in tensors.items() if not name.startswith(tuple(f"{s}." for s in stores))}
    rows = {store: _sources(directory, tensors, store, world_size, num_examples) for store in stores}
    if version == "2":  # the whole store was also the per-example copy
        whole = _prefixed(tensors, "store.")
        shared.update({f"examples.{name}": whole[name] for name in ("variance", "visits") if name in whole})
    return {"metadata": metadata, "shared": shared, "rows": rows}


def _sources(directory, tensors: dict[str, torch.Tensor], store: str, world_size: int, num_examples: int) -> Sources:
    """The saved shards of one row store: the state file itself with one process, else one file per rank."""
    if world_size == 1:
        whole = _prefixed(tensors, f"{store}.")
        return [(Shard(num_examples), lambda: whole)]

    def reader(rank: int) -> Callable[[], dict[str, torch.Tensor]]:
        return lambda: _prefixed(_read_shard(directory, rank, world_size), f"{store}.")

    return [(Shard(num_examples, rank, world_size), reader(rank)) for rank in range(world_size)]


def _read_shard(directory: str | os.PathLike, rank: int, world_size: int) -> dict[str, torch.Tensor]:
    path = Path(directory) / shard_file(rank, world_size)
    if not path.is_file():
        raise ValueError(
            f"The SADA state in {directory} was saved by {world_size} processes, but the shard of rank {rank} "
            f"({path.name}) is missing: that process did not finish writing it, or the checkpoint folder is not on "
            "storage every process shares. Resume from another checkpoint."
        )
    return _read_tensors(path)[0]


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name.removeprefix(prefix): t for name, t in tensors.items() if name.startswith(prefix)}


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "metadata": json.dumps(metadata)}
    tensors = {name: tensor.contiguous() for name, tensor in tensors.items()}
    atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=header))


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise ValueError(
            f"The SADA state {path} is truncated or corrupt ({type(error).__name__}: {error}). Resume from an "
            "earlier checkpoint, or delete the file to continue with a fresh SADA state."
        ) from error
    version = header.get("format_version")
    if header.get("format") != FORMAT or version not in _ROW_STORES:
        raise ValueError(
            f"{path} is not a SADA state of format version {', '.join(_ROW_STORES)} (format "
            f"{header.get('format')!r}, version {version!r}; version 1 was written by sada_hf 0.1). Resume it with "
            "the sada_hf release that wrote it, or delete the file to continue with a fresh SADA state."
        )
    try:
        metadata = json.loads(header["metadata"])
    except (KeyError, ValueError) as error:
        raise ValueError(f"The SADA state {path} has unreadable metadata ({error}).") from error
    return tensors, metadata, version


def write_config(directory: str | os.PathLike, metadata: dict[str, Any]) -> None:
    """`sada_config.json`: the metadata without the publication history, for people to read."""
    readable = {k: v for k, v in metadata.items() if k != "history"}
    atomic_write(Path(directory) / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(readable, indent=2) + "\n"))


def write_parquet(
    path: str | os.PathLike, columns: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> Path:
    """One Parquet table of equal-length `columns` (with `metadata` in its schema), written atomically
    (loadable with `datasets.load_dataset("parquet", data_files=...)`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({name: np.asarray(values) for name, values in columns.items()}, metadata=metadata)
    atomic_write(path, lambda temporary: pq.write_table(table, temporary))
    return path


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Columns of a Parquet file (or of several, concatenated) as numpy arrays; `ValueError` naming the
    file and what to do if it is damaged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(
            f"Cannot read {path} ({type(error).__name__}: {error}): the file is damaged or was cut short. Delete it "
            "(or the run's output folder) and train again to rewrite it."
        ) from error
    return {name: np.asarray(table[name].to_numpy(zero_copy_only=False)) for name in table.column_names}


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
