"""Run `sada-hf train` and kill it (SIGKILL: no exception handler, no `finally`) at a chosen point, for
tests/test_crash_safety.py. Imported by a forkserver so that each run skips the imports, or run as a script
under `accelerate launch` to kill one rank.

A point is one of:
- `write:PATH[@N]`: when the N-th write (default 1st) of the file at PATH, relative to the output folder,
  starts, a few bytes go into it and the process dies: what a kill in the middle of writing leaves. The
  temporary file of an atomic write and the hidden folder a saved model is staged in count as PATH.
- `delete:PATH`: when the folder at PATH starts to be deleted, half its files go, then the process dies.
- `step:N`: the process dies as training step N (1-based) begins.
"""

from __future__ import annotations

import argparse
import builtins
import io
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pyarrow.parquet
import safetensors.torch
import torch
import transformers
import transformers.modeling_utils

import sada_hf.job
import sada_hf.persistence

_ATOMIC_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]+\.tmp$")


def run(argv: list[str], point: str | None, log: str) -> None:
    """The job with `argv`, killed at `point` (None: never), its output appended to the file `log`."""
    torch.set_num_threads(1)
    with open(log, "a") as stream:
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
    if point is not None:
        output_dir = argv[argv.index("--output_dir") + 1]
        _arm(point, Path(output_dir).resolve())
    sada_hf.job.main(argv)


def _logical(path: str | os.PathLike, output_dir: Path) -> str | None:
    """`path` relative to the output folder, with staging folders and atomic temporaries named as their
    target; None outside the output folder."""
    try:
        relative = Path(os.path.abspath(path)).relative_to(output_dir)
    except ValueError:
        return None
    parts = [part for part in relative.parts if not part.startswith(".saving-")]
    if parts:
        temporary = _ATOMIC_TEMPORARY.match(parts[-1])
        parts[-1] = temporary.group("name") if temporary else parts[-1]
    return "/".join(parts)


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str, output_dir: Path) -> None:
    kind, _, target = point.partition(":")
    if kind == "step":
        _kill_at_step(int(target))
    elif kind == "delete":
        _kill_while_deleting(target, output_dir)
    elif kind == "write":
        path, _, nth = target.partition("@")
        _kill_while_writing(path, int(nth or 1), output_dir)
    else:
        raise ValueError(f"unknown point {point!r}")


def _kill_at_step(step: int) -> None:
    original = transformers.Trainer.training_step
    calls = [0]

    def training_step(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            _die()
        return original(self, *args, **kwargs)

    transformers.Trainer.training_step = training_step


def _kill_while_deleting(target: str, output_dir: Path) -> None:
    original = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if _logical(path, output_dir) == target:
            files = sorted(p for p in Path(path).rglob("*") if p.is_file())
            for file in files[: len(files) // 2]:
                file.unlink()
            _die()
        return original(path, *args, **kwargs)

    shutil.rmtree = rmtree


def _kill_while_writing(target: str, nth: int, output_dir: Path) -> None:
    """Every way a file of a run is written: Python's open (JSON, the card, PNGs), torch.save (optimizer,
    scheduler, RNG state, training arguments), safetensors (model, SADA state), pyarrow (summaries)."""
    seen = [0]

    def starting(path) -> None:
        if isinstance(path, (str, os.PathLike)) and _logical(path, output_dir) == target:
            seen[0] += 1
            if seen[0] == nth:
                with original_open(path, "wb") as partial:
                    partial.write(b"\x00partial")
                _die()

    original_open = builtins.open

    def opener(original):
        def open_(file, mode="r", *args, **kwargs):
            if any(flag in mode for flag in "wax+"):
                starting(file)
            return original(file, mode, *args, **kwargs)

        return open_

    def writer(original, position: int, keyword: str):
        def write(*args, **kwargs):
            starting(args[position] if len(args) > position else kwargs.get(keyword))
            return original(*args, **kwargs)

        return write

    builtins.open, io.open = opener(builtins.open), opener(io.open)
    torch.save = writer(torch.save, 1, "f")
    transformers.modeling_utils.safe_save_file = writer(safetensors.torch.save_file, 1, "filename")
    sada_hf.persistence.save_file = writer(sada_hf.persistence.save_file, 1, "filename")
    pyarrow.parquet.write_table = writer(pyarrow.parquet.write_table, 1, "where")


if __name__ == "__main__":  # under `accelerate launch`: kill only the process of rank --rank
    parser = argparse.ArgumentParser()
    parser.add_argument("--point", default=None)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--log", required=True)
    options, job_argv = parser.parse_known_args()
    rank = int(os.environ.get("RANK", "0"))
    run(job_argv, options.point if rank == options.rank else None, f"{options.log}.rank{rank}")
