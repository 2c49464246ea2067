"""Decisions files: what to do with the examples a review decided on (keep, drop, or relabel), and the cleaned
dataset they make. `sada-hf label-issues RUN --export FILE` writes one (the cut-off's suspects), a person's
review can write one, and `apply_decisions` / `sada-hf train --decisions FILE` apply it.

The format: CSV (UTF-8, with a header line) or Parquet with the same columns (a `.parquet` name), one line per
decided example; examples not listed are kept.

- `row` (int, required): the example's row in the user's dataset (`identity`: what `label_issues()` and
  `sada_examples.parquet` call `row`).
- `id` (string, optional column): the example's id (the `id_column` value, or the image path of an
  imagefolder); where given, it must match the dataset's.
- `given_label` (int, required): the label the dataset has at that row; a mismatch means the file was
  written for another dataset.
- `action` (required): `keep`, `drop` or `relabel`.
- `label` (int, required for `relabel`, empty otherwise): the new class index.

A file is checked whole before anything is applied; a bad one is refused with a `DecisionsError` (a
`ValueError`) whose one line names the problem and the fix.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from .identity import ID_COLUMN, ROW_COLUMN, example_identity, with_row_column

ACTIONS = ("keep", "drop", "relabel")
# What an exported suspect gets by default: relabel beat drop on every seed of the label-error benchmark (rule 10).
SUSPECT_ACTION = "relabel"
REQUIRED_COLUMNS = (ROW_COLUMN, "given_label", "action", "label")
COLUMNS = (ROW_COLUMN, ID_COLUMN, "given_label", "action", "label")  # in the order files are written
Decisions = dict[str, list]  # column -> values, one per decided example


class DecisionsError(ValueError):
    """A decisions file that cannot be applied: the message is one line naming the problem and the fix."""


def read_decisions(source: str | os.PathLike | Mapping[str, Sequence] | Any) -> Decisions:
    """The columns of a decisions file (CSV, or Parquet by its `.parquet` name), or of a table given in memory (a
    mapping of columns, a `datasets.Dataset`, a `pyarrow.Table`), with their presence and values checked
    (not yet against a dataset: `apply_decisions` does that)."""
    name = "the decisions table"
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        columns = _read_file(Path(source))
    elif isinstance(source, datasets.Dataset):
        columns = source.to_dict()
    elif hasattr(source, "to_pydict"):
        columns = source.to_pydict()
    else:
        columns = {column: list(values) for column, values in dict(source).items()}
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise DecisionsError(
            f"{name} lacks the column(s) {', '.join(missing)}: a decisions file has the columns "
            f"{', '.join(REQUIRED_COLUMNS)} (and optionally {ID_COLUMN}); see sada_hf/decisions.py or docs/usage.md."
        )
    count = len(columns[ROW_COLUMN])
    if count == 0:
        raise DecisionsError(
            f"{name} lists no decisions: write one line per example to keep, drop or relabel "
            "(`sada-hf label-issues RUN --export FILE` writes the suspects), or train without decisions."
        )
    decisions: Decisions = {
        ROW_COLUMN: [_whole_number(value, ROW_COLUMN, line, name) for line, value in _lines(columns[ROW_COLUMN])],
        "given_label": [_whole_number(v, "given_label", line, name) for line, v in _lines(columns["given_label"])],
        "action": [str(value).strip() if value is not None else "" for value in columns["action"]],
        "label": [_whole_number(v, "label", line, name, empty=True) for line, v in _lines(columns["label"])],
    }
    if ID_COLUMN in columns:
        decisions[ID_COLUMN] = [None if value in (None, "") else str(value) for value in columns[ID_COLUMN]]
    for line, (row, action, label) in _lines(zip(decisions[ROW_COLUMN], decisions["action"], decisions["label"])):
        if action not in ACTIONS:
            raise DecisionsError(
                f"{name}, line {line} (row {row}): unknown action {action!r}; write one of {', '.join(ACTIONS)}."
            )
        if (action == "relabel") != (label is not None):
            fix = "give the new class index" if action == "relabel" else "leave `label` empty (or use relabel)"
            raise DecisionsError(
                f"{name}, line {line} (row {row}): `label` is required for relabel and empty otherwise, but this "
                f"{action} has label {label!r}; {fix}."
            )
    return decisions


def apply_decisions(
    dataset: datasets.Dataset,
    decisions: str | os.PathLike | Mapping[str, Sequence] | Any,
    label_column: str = "label",
    image_column: str | None = "image",
    id_column: str | None = None,
) -> datasets.Dataset:
    """`dataset` cleaned by `decisions` (a decisions file or table, see the module docstring): the `drop`ped
    examples left out, the `relabel`led ones given their new label, the rest as they were, in the same order.
    Rows are the dataset's `row` column (the job's datasets, and one cleaned before), else its positions; ids
    are `example_identity`'s (`id_column`, else imagefolder paths). The cleaned dataset keeps each example's
    `row` (added when the dataset had none), so its label issues and decisions still name the original rows.
    Save it with `save_to_disk` or `push_to_hub`. Raises `DecisionsError` before changing anything if the
    decisions do not fit the dataset."""
    table = read_decisions(decisions)
    name = str(decisions) if isinstance(decisions, (str, os.PathLike)) else "the decisions table"
    if label_column not in dataset.column_names:
        raise DecisionsError(
            f"The dataset has no label column {label_column!r} (its columns: {dataset.column_names}); name it "
            "with `label_column` (`--label_column_name`)."
        )
    identity = example_identity(dataset, image_column, id_column)
    labels = np.asarray(dataset.with_format("numpy", columns=[label_column])[label_column]).astype(np.int64)
    positions = _positions(table, identity, labels, _num_classes(dataset, label_column, labels), name)

    cleaned = dataset if ROW_COLUMN in dataset.column_names else with_row_column(dataset)
    relabel = [
        (p, label) for p, action, label in zip(positions, table["action"], table["label"]) if action == "relabel"
    ]
    if relabel:
        feature, order = dataset.features[label_column], cleaned.column_names
        new_labels = labels.copy()
        new_labels[[p for p, _ in relabel]] = [label for _, label in relabel]
        cleaned = cleaned.remove_columns(label_column).add_column(label_column, new_labels)
        cleaned = cleaned.cast_column(label_column, feature).select_columns(order)
    dropped = {p for p, action in zip(positions, table["action"]) if action == "drop"}
    if dropped:
        cleaned = cleaned.select([p for p in range(len(dataset)) if p not in dropped])
    return cleaned


def write_decisions(path: str | os.PathLike, decisions: Decisions) -> Path:
    """Write `decisions` (columns as in the module docstring) to `path`: Parquet for a `.parquet` name, else CSV."""
    from .persistence import atomic_write, write_parquet

    path = Path(path)
    columns = {column: decisions[column] for column in COLUMNS if column in decisions}
    if path.suffix == ".parquet":
        values = {
            c: np.asarray(v, dtype=object if c in (ID_COLUMN, "action", "label") else np.int64)
            for c, v in columns.items()
        }
        return write_parquet(path, values)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write_csv(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(["" if value is None else value for value in line] for line in zip(*columns.values()))

    atomic_write(path, write_csv)
    return path


def suspects_to_decisions(issues: datasets.Dataset, action: str = SUSPECT_ACTION) -> Decisions:
    """The default decisions from a `label_issues()` ranking: every suspect relabelled to its `suggested_label`
    (kept where that is its given label), or (`action="drop"`) dropped."""
    if action not in ("drop", "relabel"):
        raise ValueError(f"`action` must be 'drop' or 'relabel' for the suspects, got {action!r}.")
    if ROW_COLUMN not in issues.column_names or "suggested_label" not in issues.column_names:
        raise ValueError(
            "This run's summary has no rows or suggested labels (it was written by sada_hf < 0.5): train it again "
            "to export its decisions."
        )
    suspects = issues.filter(lambda suspect: suspect, input_columns="suspect")
    given = suspects["given_label"]
    if action == "drop":
        actions, labels = ["drop"] * len(suspects), [None] * len(suspects)
    else:
        suggested = suspects["suggested_label"]
        actions = ["keep" if new == old else "relabel" for new, old in zip(suggested, given)]
        labels = [None if new == old else new for new, old in zip(suggested, given)]
    decisions: Decisions = {ROW_COLUMN: suspects[ROW_COLUMN], "given_label": given, "action": actions, "label": labels}
    if ID_COLUMN in suspects.column_names:
        decisions[ID_COLUMN] = suspects[ID_COLUMN]
    return decisions


def _read_file(path: Path) -> dict[str, list]:
    if not path.is_file():
        raise DecisionsError(f"No decisions file at {path}: give the path of a CSV or Parquet decisions file.")
    if path.suffix == ".parquet":
        from .persistence import read_parquet

        try:
            return {column: values.tolist() for column, values in read_parquet(path).items()}
        except ValueError as error:
            raise DecisionsError(
                f"{path} is not a readable Parquet file: export the decisions again, or write them as a CSV."
            ) from error
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except UnicodeDecodeError as error:
        raise DecisionsError(
            f"{path} is not UTF-8 text ({error.reason}): save the decisions as a UTF-8 CSV."
        ) from error
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise DecisionsError(
            f"{path} is empty: a decisions file starts with the header line {','.join(COLUMNS)} and lists one "
            "example a line (`sada-hf label-issues RUN --export FILE` writes one)."
        )
    header = [cell.strip() for cell in lines[0]]
    return {column: [line[i] if i < len(line) else "" for line in lines[1:]] for i, column in enumerate(header)}


def _lines(values) -> enumerate:
    """Values with their line number in a CSV file (the header is line 1)."""
    return enumerate(values, start=2)


def _whole_number(value: Any, column: str, line: int, name: str, empty: bool = False) -> int | None:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():  # Parquet ints with nulls
        value = int(value)
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
    if text == "" and empty:
        return None
    try:
        return int(text)
    except ValueError:
        raise DecisionsError(
            f"{name}, line {line}: `{column}` must be a whole number, got {text!r}; write the class index or row."
        ) from None


def _num_classes(dataset: datasets.Dataset, label_column: str, labels: np.ndarray) -> int:
    feature = dataset.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return feature.num_classes
    return int(labels.max()) + 1 if len(labels) else 0


def _positions(table: Decisions, identity: dict, labels: np.ndarray, num_classes: int, name: str) -> list[int]:
    """Each decision's position in the dataset, after checking that it names a row of it once, with the
    dataset's id and given label, and a new label within its classes."""
    position_of = {int(row): position for position, row in enumerate(identity[ROW_COLUMN])}
    ids = identity.get(ID_COLUMN)
    written_ids = table.get(ID_COLUMN, [None] * len(table[ROW_COLUMN]))
    seen: dict[int, int] = {}
    positions = []
    for line, (row, example_id, given, label) in _lines(
        zip(table[ROW_COLUMN], written_ids, table["given_label"], table["label"])
    ):
        where = f"{name}, line {line} (row {row})"
        if row in seen:
            raise DecisionsError(
                f"{where}: the example is listed twice (also on line {seen[row]}); keep one decision per example."
            )
        seen[row] = line
        if row not in position_of:
            raise DecisionsError(
                f"{where}: the dataset has no such row (its rows: {len(position_of)} examples); the file was written "
                "for another dataset or subset: export it again from a run on this one."
            )
        position = position_of[row]
        if example_id is not None and (ids is None or ids[position] != example_id):
            found = "no ids" if ids is None else f"id {ids[position]!r} there"
            raise DecisionsError(
                f"{where}: the file names id {example_id!r}, the dataset has {found}; the file was written for "
                "another dataset (or name its id column: `id_column`, `--id_column_name`)."
            )
        if given != labels[position]:
            raise DecisionsError(
                f"{where}: given_label {given} but the dataset has label {int(labels[position])} there; the file "
                "was written for another dataset (or another label noise): export it again from a run on this one."
            )
        if label is not None and not 0 <= label < num_classes:
            raise DecisionsError(
                f"{where}: label {label} is outside the dataset's classes 0..{num_classes - 1}; write a class index."
            )
        positions.append(position)
    return positions
