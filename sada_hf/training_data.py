"""The training dataset as `SADATrainer` needs it: checked before the first step, indexed (row i is the
example with index i in the SADA state), bound to the shared strengths; and the collator wrapper that
carries the index through collators that keep only the keys they know."""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import torch
from datasets.arrow_dataset import update_metadata_with_features
from datasets.table import InMemoryTable, concat_tables
from transformers.utils import logging

from .transform import SADATransform

logger = logging.get_logger(f"transformers.{__name__}")


class IndexKeepingCollator:
    """Wraps a data collator: takes the index out of each feature dict before calling it and puts it
    back into the batch as a tensor, so collators that keep only the keys they know (Hugging Face's
    image-classification example) work unchanged. Picklable (a class, not a closure)."""

    def __init__(self, collator: Any, index_column: str) -> None:
        self.collator = collator
        self.index_column = index_column

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        if not features or not isinstance(features[0], dict) or self.index_column not in features[0]:
            return self.collator(features)
        indices = [int(feature[self.index_column]) for feature in features]
        batch = self.collator([{k: v for k, v in f.items() if k != self.index_column} for f in features])
        try:
            batch[self.index_column] = torch.tensor(indices, dtype=torch.int64)
        except TypeError as error:
            raise TypeError(
                f"The data collator {type(self.collator).__name__} returned a {type(batch).__name__}; SADATrainer "
                f"needs a dict-like batch to put the {self.index_column!r} column back into."
            ) from error
        return batch


class KeepKeys:
    """Wraps a dataset transform and keeps only the output keys the model accepts (picklable)."""

    def __init__(self, transform: Any, keys: tuple[str, ...]) -> None:
        self.transform = transform
        self.keys = keys

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        return {k: v for k, v in self.transform(batch).items() if k in self.keys}


def custom_transform(dataset: Any) -> Any:
    """The transform set with `set_transform` / `with_transform` on a `datasets.Dataset`, or None."""
    if not isinstance(dataset, datasets.Dataset) or dataset.format["type"] != "custom":
        return None
    return dataset.format["format_kwargs"].get("transform")


def sada_transform_of(dataset: Any) -> SADATransform | None:
    """The `SADATransform` of a training dataset: set with `set_transform`, or mapped on a stream (so that
    the trainer can refuse the stream rather than let it augment with strengths nobody publishes)."""
    transform = custom_transform(dataset)
    if transform is None and isinstance(dataset, datasets.IterableDataset):
        transform = next(filter(_is_sada, _mapped_functions(dataset)), None)
    return transform if _is_sada(transform) else None


def _is_sada(transform: Any) -> bool:
    return isinstance(transform, SADATransform)


def _mapped_functions(stream: datasets.IterableDataset) -> list[Any]:
    """The functions of a stream's `.map` calls. `datasets` keeps them in a private chain of example
    iterables (`_ex_iterable`, each step's `ex_iterable` and `function`); tests/test_validation.py fails
    if that chain moves."""
    functions, step = [], getattr(stream, "_ex_iterable", None)
    while step is not None:
        functions.append(getattr(step, "function", None))
        step = getattr(step, "ex_iterable", None)
    return functions


def with_transform(dataset: datasets.Dataset, transform: Any, like: datasets.Dataset) -> datasets.Dataset:
    """`dataset` with `transform`, keeping the column selection of `like`'s format (plus any column
    `dataset` has that `like` lacks, such as the index) and its `output_all_columns`."""
    fmt = like.format
    columns = None
    if fmt["columns"] != like.column_names:
        columns = fmt["columns"] + [c for c in dataset.column_names if c not in like.column_names]
    return dataset.with_transform(transform, columns=columns, output_all_columns=fmt["output_all_columns"])


def checked_train_dataset(dataset: datasets.Dataset, transform: SADATransform, num_labels: int) -> datasets.Dataset:
    """Check size, columns, labels and the index column before the first step; add the index
    column (0..N-1) if it is missing. Returns a new dataset; the caller's is not modified."""
    if len(dataset) == 0:
        raise ValueError("The training dataset is empty: SADATrainer needs at least one example.")
    columns = dataset.column_names
    for role, column in (("image", transform.image_column), ("label", transform.label_column)):
        if column not in columns:
            raise ValueError(
                f"The training dataset has no {role} column {column!r}; its columns are {columns}. Pass "
                f"`{role}_column=...` to SADATransform, or rename the column."
            )

    labels = raw_column(dataset, transform.label_column)
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"Labels in column {transform.label_column!r} must be integers (class ids), got dtype {labels.dtype}."
        )
    out_of_range = (labels < 0) | (labels >= num_labels)
    if out_of_range.any():
        position = int(np.argmax(out_of_range))
        raise ValueError(
            f"Label {int(labels[position])} at row {position} is outside 0..{num_labels - 1} "
            f"({int(out_of_range.sum())} such rows): the model has num_labels={num_labels}. Build the model with "
            "num_labels set to the number of classes, or remap the labels."
        )

    index_column = transform.index_column
    if index_column not in columns:
        return add_index_column(dataset, index_column)
    index = raw_column(dataset, index_column)
    if index.shape != (len(dataset),) or not np.array_equal(index, np.arange(len(dataset))):
        raise ValueError(
            f"The index column {index_column!r} must hold 0..{len(dataset) - 1} in order (it is the row of each "
            "example in the SADA state), but it does not, e.g. because it was added before a select, shuffle or "
            f"split. Remove it (`dataset.remove_columns('{index_column}')`): SADATrainer adds a fresh one."
        )
    return dataset


def add_index_column(dataset: datasets.Dataset, name: str = "index") -> datasets.Dataset:
    """`dataset` with a column `name` holding each row's position 0..N-1, without rewriting the data.

    `Dataset.add_column` first flattens a shuffled or selected dataset's indices mapping, i.e. rewrites
    every image (the whole of ImageNet). Here the column goes onto the underlying table instead, holding
    at each table row the position it has in the view (-1 for rows the view does not show), and the
    mapping is kept. Only a view that shows some table row twice (oversampling) must be flattened.
    """
    mapping = dataset._indices  # the view's row -> table row, or None
    if mapping is None:
        return dataset.add_column(name, np.arange(len(dataset), dtype=np.int64))
    table_rows = np.asarray(mapping.column(0).to_numpy(), dtype=np.int64)
    if np.unique(table_rows).size != table_rows.size:
        logger.warning(
            f"The training dataset shows some rows more than once; giving each its own {name!r} rewrites it "
            "(flatten_indices), which takes time and disk for large datasets."
        )
        return dataset.flatten_indices().add_column(name, np.arange(len(dataset), dtype=np.int64))
    positions = np.full(len(dataset._data), -1, dtype=np.int64)
    positions[table_rows] = np.arange(len(table_rows), dtype=np.int64)
    column = InMemoryTable.from_pydict({name: positions})
    info = dataset.info.copy()
    info.features.update(datasets.Features({name: datasets.Value("int64")}))
    table = concat_tables([dataset._data, column], axis=1)
    table = update_metadata_with_features(table, info.features)
    return datasets.Dataset(table, info=info, split=dataset.split, indices_table=mapping)


def raw_column(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """A column as stored (without running the dataset's transform), in the dataset's row order."""
    return np.asarray(dataset.with_format("numpy", columns=[column])[column])
