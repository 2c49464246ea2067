"""Which example of the user's dataset each training example is, so that a label issue leads back to the data:
its `row` (its position in the dataset the user passed, before any subsetting or shuffling `sada-hf train`
does) and, where there is one, its `id` (the value of an id column the user names, else the image's file
path when the images are stored as paths, as in `imagefolder` datasets)."""

from __future__ import annotations

import datasets
import numpy as np
import pyarrow.compute as pc

# The column that carries each example's row through the job's subsetting and shuffling (`with_row_column`).
ROW_COLUMN = "row"
ID_COLUMN = "id"


def with_row_column(dataset: datasets.Dataset) -> datasets.Dataset:
    """`dataset` with its row positions 0..N-1 in a `row` column, added before the job selects or shuffles it,
    so that every later view still names each example's row in the dataset as loaded. A dataset that has a
    `row` column already (the built-in sets, or one saved from such a dataset) keeps it: its rows are then
    those of the dataset it came from (`example_identity` checks them)."""
    if ROW_COLUMN in dataset.column_names:
        return dataset
    return dataset.add_column(ROW_COLUMN, np.arange(len(dataset), dtype=np.int64))


def example_identity(
    dataset: datasets.Dataset, image_column: str | None = None, id_column: str | None = None
) -> dict[str, np.ndarray]:
    """Per row of `dataset` (stored values, no transform run): `row`, the dataset's own `row` column when it has
    one (the job's datasets) else the position 0..N-1; and `id` when there is one: the `id_column` values as
    strings, else the image paths when every image is stored as a path only (imagefolder)."""
    identity = {ROW_COLUMN: _rows(dataset)}
    if id_column is not None:
        if id_column not in dataset.column_names:
            raise ValueError(
                f"The id column {id_column!r} is not in the dataset; its columns are {dataset.column_names}. Name "
                "one of them as `id_column` (`--id_column_name`), or leave it unset."
            )
        identity[ID_COLUMN] = np.asarray([str(value) for value in dataset.with_format(None)[id_column]], dtype=object)
    elif image_column is not None and _images_are_paths(dataset, image_column):
        cells = dataset.with_format("arrow", columns=[image_column])[image_column]
        identity[ID_COLUMN] = np.asarray(pc.struct_field(cells, "path").to_pylist(), dtype=object)
    return identity


def _rows(dataset: datasets.Dataset) -> np.ndarray:
    if ROW_COLUMN not in dataset.column_names:
        return np.arange(len(dataset), dtype=np.int64)
    rows = np.asarray(dataset.with_format("numpy", columns=[ROW_COLUMN])[ROW_COLUMN])
    if rows.dtype.kind not in "iu" or (rows < 0).any() or np.unique(rows).size != rows.size:
        raise ValueError(
            f"The dataset's {ROW_COLUMN!r} column is read as each example's row in your dataset, so it must hold "
            f"distinct whole numbers >= 0; it holds {rows[:5].tolist()}... Rename that column, or remove it (the "
            "rows are then the dataset's positions)."
        )
    return rows.astype(np.int64)


def _images_are_paths(dataset: datasets.Dataset, image_column: str) -> bool:
    """Whether every image of the underlying table is a file path without bytes (read without decoding)."""
    if image_column not in dataset.column_names or not isinstance(dataset.features[image_column], datasets.Image):
        return False
    stored = dataset.data.column(image_column)
    return all(
        chunk.field("bytes").null_count == len(chunk) and chunk.field("path").null_count == 0
        for chunk in stored.chunks
    )
