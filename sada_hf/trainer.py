"""`SADATrainer`: `transformers.Trainer` with SADA's per-example augmentation strengths.

Hugging Face glue only: the math lives in `state.py` / `store.py`, the images in `transform.py`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import weakref
from typing import Any

import datasets
import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging

from .card import update_model_card
from .compat import reload_renamed_weights
from .config import SADAConfig
from .plots import CLASS_STRENGTHS_PLOT, STRENGTHS_PLOT, plot_class_strengths, plot_strength_history
from .state import CONFIG_FILE, STATE_FILE, SADAState
from .transform import SADATransform

logger = logging.get_logger(__name__)
TRAINER_STATE_NAME = "trainer_state.json"


class SADATrainer(Trainer):
    """A `Trainer` whose training dataset carries a `SADATransform` gets SADA: each training step
    records every example's predictive distribution, each epoch end turns the variance of its
    influence into a strength, and the transform applies it in the next epoch.

    Accepts everything `Trainer` does, plus `sada_config` (default: the transform's config). With any
    other training dataset, training is exactly `Trainer`'s. Beyond `Trainer`: datasets with a
    `set_transform` work with `remove_unused_columns=True`, and resuming restores the SADA state and
    (transformers#43701) the weights of models whose checkpoint keys are renamed on save.

    Attributes:
        sada_state (`SADAState` or `None`): strengths, variance and visits of every training example;
            `None` when SADA is inactive.
    """

    def __init__(
        self,
        model: Any = None,
        args: Any = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        *,
        sada_config: SADAConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self.sada_state: SADAState | None = None
        _refuse_iterable(train_dataset)  # before super: Trainer's own error would not name the fix
        super().__init__(model, args, data_collator, train_dataset, eval_dataset, processing_class, **kwargs)

        transform = _sada_transform_of(self.train_dataset)
        if transform is None:
            if self.train_dataset is not None:
                logger.warning(
                    "SADATrainer: the training dataset has no SADATransform, so SADA is inactive and training is "
                    "exactly Trainer's. Enable it with `train_dataset.set_transform(SADATransform(...))`."
                )
            return

        # Config: the trainer's, else the transform's, with the run's seed unless one was set.
        config = sada_config if sada_config is not None else transform.config
        if config.augmentation_seed is None:
            config = dataclasses.replace(config, augmentation_seed=self.args.seed)

        # Data: checked before the first step, indexed, and bound to the shared strengths.
        num_labels = _num_labels(self.model)
        # Unformatted: adding a column to a selected/shuffled dataset rewrites it through its transform.
        dataset = _checked_train_dataset(self.train_dataset.with_format(None), transform, num_labels)
        self.sada_state = SADAState(len(dataset), num_labels, config)
        bound = transform.bound_to(self.sada_state.schedule, config)
        self.train_dataset = _with_transform(dataset, bound, like=self.train_dataset)
        self._index_column = transform.index_column
        self._label_column = transform.label_column
        self.add_callback(_SADACallback(self))

    # ---- data ----------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self.sada_state is not None and self._index_column not in self._signature_columns:
            self._signature_columns.append(self._index_column)

    def _remove_unused_columns(self, dataset: datasets.Dataset, description: str | None = None) -> datasets.Dataset:
        """Datasets with a `set_transform` need their raw columns (the image) until the transform has
        run, so filter the transform's output instead of the dataset's columns."""
        if not self.args.remove_unused_columns or dataset.format["type"] != "custom":
            return super()._remove_unused_columns(dataset, description)
        self._set_signature_columns_if_needed()
        transform = dataset.format["format_kwargs"]["transform"]
        return _with_transform(dataset, _KeepKeys(transform, tuple(self._signature_columns)), like=dataset)

    # ---- training step -------------------------------------------------------------------------

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        if self.sada_state is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # ViT and ResNet accept stray kwargs silently: the index must not reach forward().
        indices = inputs.pop(self._index_column, None)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        # Gate on model.training: evaluation calls compute_loss too (is_in_train stays True during it).
        if model.training and indices is not None:
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs[1]
            self._observe(indices, logits)
        return (loss, outputs) if return_outputs else loss

    def _observe(self, indices: torch.Tensor, logits: torch.Tensor) -> None:
        """Apply the (index, logits) of every process on every rank, so all ranks hold the full state."""
        logits = logits.detach().to(torch.float32)
        if self.accelerator.num_processes > 1:
            # gather, not gather_for_metrics: the latter drops samples under gradient accumulation.
            indices = self.accelerator.pad_across_processes(indices, dim=0, pad_index=-1)
            logits = self.accelerator.pad_across_processes(logits, dim=0)
            indices, logits = self.accelerator.gather((indices, logits))
        self.sada_state.observe(indices.cpu(), logits.cpu())

    def log_sada_statistics(self, stats: dict[str, Any]) -> None:
        """Send one epoch's scalar strength statistics through the normal logging path."""
        self.log({f"sada/{k}": v for k, v in stats.items() if k != "epoch" and isinstance(v, (int, float))})

    # ---- checkpoints ---------------------------------------------------------------------------

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # Before super: it may push to the Hub, and checkpoint rotation and pushes follow it.
        if self.sada_state is not None and self.args.should_save:
            self.sada_state.save(output_dir if output_dir is not None else self.args.output_dir)
        super().save_model(output_dir, _internal_call)

    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
        **kwargs: Any,
    ):
        if self.sada_state is not None:
            checkpoint = resume_from_checkpoint
            if checkpoint is True:
                checkpoint = get_last_checkpoint(self.args.output_dir)  # None: super raises the usual error
            self._restore_sada_state(checkpoint or None)
        return super().train(
            resume_from_checkpoint=resume_from_checkpoint,
            trial=trial,
            ignore_keys_for_eval=ignore_keys_for_eval,
            **kwargs,
        )

    def _restore_sada_state(self, checkpoint: str | None) -> None:
        if checkpoint is None:
            self.sada_state.reset()
            return
        try:
            changed = self.sada_state.load(checkpoint)
        except FileNotFoundError:
            epoch = _checkpoint_epoch(checkpoint)
            logger.warning(
                f"No SADA state in {checkpoint} (written by a plain Trainer?): resuming with a fresh SADA state, so "
                f"every example restarts its warm-up at epoch {epoch}."
            )
            self.sada_state.reset(epoch)
            return
        if changed:
            logger.warning(
                f"Resuming SADA with config fields {changed} changed from the checkpoint's; using the new values."
            )

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Upstream copies only the model files of a checkpoint into output_dir before uploading it.
        if self.sada_state is not None and self.args.should_save:
            for name in (STATE_FILE, CONFIG_FILE):
                source = os.path.join(checkpoint_folder, name)
                if os.path.isfile(source):
                    shutil.copyfile(source, os.path.join(self.args.output_dir, name))
        super()._push_from_checkpoint(checkpoint_folder)

    # ---- model card and plots ------------------------------------------------------------------

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """`Trainer`'s card, plus the `sada` tag and a SADA section with the strength plots."""
        super().create_model_card(*args, **kwargs)
        if self.sada_state is None or not self.is_world_process_zero():
            return
        plots = self.save_sada_plots()
        update_model_card(os.path.join(self.args.output_dir, "README.md"), self.sada_state, plots)

    def save_sada_plots(self, output_dir: str | None = None) -> list[str]:
        """Draw the strength distribution per epoch and the mean strength per class as PNG files in
        `output_dir` (default: args.output_dir); returns their file names."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        state = self.sada_state
        written = []
        if state.history:
            plot_strength_history(state.history, state.num_examples, os.path.join(output_dir, STRENGTHS_PLOT))
            written.append(STRENGTHS_PLOT)
        labels = _raw_column(self.train_dataset, self._label_column)
        feature = self.train_dataset.features[self._label_column]
        names = list(getattr(feature, "names", None) or [str(i) for i in range(state.num_labels)])
        plot_class_strengths(state.strengths.numpy(), labels, names, os.path.join(output_dir, CLASS_STRENGTHS_PLOT))
        return written + [CLASS_STRENGTHS_PLOT]

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        reload_renamed_weights(model if model is not None else self.model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        super()._load_best_model()
        reload_renamed_weights(self.model, self.state.best_model_checkpoint)


class TransformEpochCallback(TrainerCallback):
    """Keeps a `SADATransform`'s epoch in step with a plain `Trainer`, so each epoch draws fresh
    augmentations (for baselines trained without `SADATrainer`)."""

    def __init__(self, transform: SADATransform) -> None:
        self.transform = transform

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.transform.set_epoch(math.floor(state.epoch))


class _SADACallback(TrainerCallback):
    """Epoch boundaries for `SADATrainer`. Callbacks are not handed the trainer, so this one holds a
    weak reference: a cycle would delay freeing the trainer, and with it shutting down persistent
    dataloader workers, to a garbage collection (where each worker join times out)."""

    def __init__(self, trainer: SADATrainer) -> None:
        self._trainer = weakref.ref(trainer)

    def on_epoch_begin(self, args, state, control, **kwargs):
        trainer = self._trainer()
        for stats in trainer.sada_state.begin_epoch(math.floor(state.epoch)):
            trainer.log_sada_statistics(stats)

    def on_epoch_end(self, args, state, control, **kwargs):
        trainer = self._trainer()
        trainer.log_sada_statistics(trainer.sada_state.end_epoch())


class _KeepKeys:
    """Wraps a dataset transform and keeps only the output keys the model accepts (picklable)."""

    def __init__(self, transform: Any, keys: tuple[str, ...]) -> None:
        self.transform = transform
        self.keys = keys

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        return {k: v for k, v in self.transform(batch).items() if k in self.keys}


def _refuse_iterable(dataset: Any) -> None:
    if isinstance(dataset, (datasets.IterableDataset, torch.utils.data.IterableDataset)):
        raise TypeError(
            f"SADATrainer needs a map-style `datasets.Dataset` (it keeps one state row per example), got "
            f"{type(dataset).__name__}. Load the dataset without `streaming=True` (or convert it with "
            "`Dataset.from_generator`), or use `transformers.Trainer` for streaming."
        )


def _with_transform(dataset: datasets.Dataset, transform: Any, like: datasets.Dataset) -> datasets.Dataset:
    """`dataset` with `transform`, keeping the column selection of `like`'s format (plus any column
    `dataset` has that `like` lacks, such as the index) and its `output_all_columns`."""
    fmt = like.format
    columns = None
    if fmt["columns"] != like.column_names:
        columns = fmt["columns"] + [c for c in dataset.column_names if c not in like.column_names]
    return dataset.with_transform(transform, columns=columns, output_all_columns=fmt["output_all_columns"])


def _sada_transform_of(dataset: Any) -> SADATransform | None:
    """The SADATransform set on a training dataset, or None."""
    if not isinstance(dataset, datasets.Dataset) or dataset.format["type"] != "custom":
        return None
    transform = dataset.format["format_kwargs"].get("transform")
    return transform if isinstance(transform, SADATransform) else None


def _num_labels(model: torch.nn.Module) -> int:
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if not isinstance(num_labels, int) or num_labels < 2:
        raise ValueError(
            f"SADATrainer needs a classification model with `config.num_labels >= 2`, got {num_labels!r}: SADA "
            "compares predicted class distributions."
        )
    return num_labels


def _checked_train_dataset(dataset: datasets.Dataset, transform: SADATransform, num_labels: int) -> datasets.Dataset:
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

    labels = _raw_column(dataset, transform.label_column)
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
        return dataset.add_column(index_column, np.arange(len(dataset), dtype=np.int64))
    index = _raw_column(dataset, index_column)
    if index.shape != (len(dataset),) or not np.array_equal(index, np.arange(len(dataset))):
        raise ValueError(
            f"The index column {index_column!r} must hold 0..{len(dataset) - 1} in order (it is the row of each "
            "example in the SADA state), but it does not, e.g. because it was added before a select, shuffle or "
            f"split. Remove it (`dataset.remove_columns('{index_column}')`): SADATrainer adds a fresh one."
        )
    return dataset


def _raw_column(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """A column as stored (without running the dataset's transform), in the dataset's row order."""
    return np.asarray(dataset.with_format("numpy", columns=[column])[column])


def _checkpoint_epoch(checkpoint: str) -> int:
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    return math.floor(TrainerState.load_from_json(path).epoch) if os.path.isfile(path) else 0
