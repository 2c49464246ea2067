"""Which checkpoint folders a run may resume from: a checkpoint is complete, or resume never picks it.

`SADATrainer` opens every checkpoint with a record (`checkpoint_record.json`, written before anything
else) that says the folder is being written, and closes it, once every process has written its part, with
the name and size of every file in the folder. A folder is complete when its record is closed and every
file it lists is there with its size: a kill while the checkpoint is written leaves it open, a kill while
an old checkpoint is deleted removes some of its files. Folders without a record (written by
`transformers.Trainer` or sada_hf < 0.5) are complete when their `trainer_state.json`, which Trainer writes
after the model, optimizer and RNG states, reads back.

Resuming on its own (`resume_from_checkpoint=True`) takes only complete checkpoints. A checkpoint named by
path is refused only if its save did not finish: its files may have been changed on purpose since (weights
re-sharded, say), which the trainer then reports in a warning.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .persistence import atomic_write

RECORD_FILE = "checkpoint_record.json"
FORMAT = "sada_hf.checkpoint"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")  # the folders Trainer's own resume considers
_TEMPORARY = re.compile(r"^\..*\.tmp$")  # atomic_write's files before their rename
_UNREADABLE = object()  # a record that does not read back


@dataclass(frozen=True)
class Checkpoint:
    """A `checkpoint-N` folder of a run: its `path`, `step`, and why it is incomplete (`None`: complete)."""

    path: Path
    step: int
    incomplete: str | None


def open_record(folder: str | os.PathLike) -> None:
    """Start a checkpoint in `folder`: from now until `close_record`, the folder is incomplete."""
    _write_record(Path(folder), {"format": FORMAT, "complete": False})


def close_record(folder: str | os.PathLike) -> None:
    """Declare the checkpoint in `folder` complete, listing every file in it with its size (after every
    process has written its files: the caller waits for them)."""
    folder = Path(folder)
    files = {name: size for name, size in _files(folder) if name != RECORD_FILE}
    _write_record(folder, {"format": FORMAT, "complete": True, "files": files})


def checkpoints(run_dir: str | os.PathLike) -> list[Checkpoint]:
    """The `checkpoint-N` folders of `run_dir`, newest (highest step) first, each judged complete or not."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for entry in run_dir.iterdir():
        match = _CHECKPOINT.match(entry.name)
        if match and entry.is_dir():
            found.append(Checkpoint(entry, int(match.group(1)), incomplete_reason(entry)))
    return sorted(found, key=lambda checkpoint: checkpoint.step, reverse=True)


def last_complete(run_dir: str | os.PathLike) -> tuple[Checkpoint | None, list[Checkpoint]]:
    """The newest complete checkpoint of `run_dir` (`None` if there is none) and the incomplete ones newer
    than it, which resuming skips."""
    skipped = []
    for checkpoint in checkpoints(run_dir):
        if checkpoint.incomplete is None:
            return checkpoint, skipped
        skipped.append(checkpoint)
    return None, skipped


def changed_files(folder: str | os.PathLike) -> str | None:
    """For a checkpoint whose save finished (its record closed), what differs from what was saved (a file
    missing or of another size: a deletion was interrupted, or someone changed it since); else `None`."""
    record = _record(Path(folder))
    if not (isinstance(record, dict) and record.get("complete")):
        return None
    for name, size in record.get("files", {}).items():
        path = Path(folder) / name
        if not path.is_file():
            return f"{name} is missing (the save or a deletion was interrupted)"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not the {size} it was saved with"
    return None


def unfinished_reason(folder: str | os.PathLike) -> str | None:
    """Why the save of the checkpoint in `folder` did not finish, or `None` if it did (its files may have
    changed since: `changed_files`)."""
    folder = Path(folder)
    record = _record(folder)
    if record is None:
        return _legacy_incomplete_reason(folder)
    if record is _UNREADABLE:
        return f"its {RECORD_FILE} does not read back"
    if not record.get("complete"):
        return "it was still being written (the save was interrupted)"
    return None


def incomplete_reason(folder: str | os.PathLike) -> str | None:
    """Why the checkpoint in `folder` cannot be resumed from, or `None` if it is complete: its save finished
    and its files are as saved."""
    return unfinished_reason(folder) or changed_files(folder)


def _record(folder: Path):
    """The folder's record as a dict, `None` if it has none, `_UNREADABLE` if it does not read back."""
    path = folder / RECORD_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return _UNREADABLE
    return record if isinstance(record, dict) else _UNREADABLE


def _legacy_incomplete_reason(folder: Path) -> str | None:
    try:
        json.loads((folder / TRAINER_STATE_NAME).read_text())
    except FileNotFoundError:
        return f"it has no {RECORD_FILE} and no {TRAINER_STATE_NAME} (the save was interrupted)"
    except (OSError, ValueError):
        return f"its {TRAINER_STATE_NAME} does not read back (the save was interrupted)"
    return None


def _files(folder: Path) -> Iterator[tuple[str, int]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _TEMPORARY.match(path.name):
            yield path.relative_to(folder).as_posix(), path.stat().st_size


def _write_record(folder: Path, record: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    atomic_write(folder / RECORD_FILE, lambda temporary: Path(temporary).write_text(text))
