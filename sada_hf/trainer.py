"""`SADATrainer`: `transformers.Trainer` with SADA's per-example augmentation strengths.

Hugging Face glue only: the math lives in `state.py` / `store.py`, the images in `transform.py`, the
probe's forward pass in `probe.py`.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import os
import weakref
from typing import Any

import datasets
import numpy as np
import torch
from accelerate.data_loader import SeedableRandomSampler
from datasets.arrow_dataset import update_metadata_with_features
from datasets.table import InMemoryTable, concat_tables
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import logging

from .card import update_model_card
from .compat import reload_renamed_weights
from .config import SADAConfig
from .dynamics import DYNAMICS_DIR, data_map, probe_rows, write_probe
from .label_issues import SHEET, contact_sheet, label_issues, rank_label_issues
from .plots import (
    CLASS_STRENGTHS_PLOT,
    DATA_MAP_PLOT,
    STRENGTHS_PLOT,
    plot_class_strengths,
    plot_data_map,
    plot_strength_history,
)
from .probe import Probe
from .sharding import Shard, route_to_owners
from .state import SADAState, StrengthStatistics, mid_epoch_probe_steps
from .transform import SADATransform

# Under the `transformers` logger, so that SADA's lines follow Trainer's own (`log_level`, `log_level_replica`).
logger = logging.get_logger(f"transformers.{__name__}")
TRAINER_STATE_NAME = "trainer_state.json"


class SADATrainer(Trainer):
    """A `Trainer` whose training dataset carries a `SADATransform` gets SADA: every example's
    predictions are recorded (from the training step, or from a clean-view probe), the variance of their
    influence becomes a strength, and the transform applies it to the example's next visits.

    Accepts everything `Trainer` does, plus `sada_config` (default: the transform's config). Beyond
    `Trainer`: datasets with a `set_transform` work with `remove_unused_columns=True`, any collator that
    takes a list of feature dicts works unchanged (the index is set aside and put back), and resuming
    restores the SADA state.

    With any other training dataset SADA is inactive and this is `Trainer`, with one difference kept on
    purpose: resuming a model whose checkpoint keys are renamed on save (ViT, transformers#43701) reloads
    its weights through `from_pretrained` instead of silently keeping a fresh encoder.

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
                    "SADATrainer: the training dataset has no SADATransform, so SADA is inactive and this is "
                    "Trainer. Enable it with `train_dataset.set_transform(SADATransform(...))`."
                )
            return

        # Config: the trainer's, else the transform's, with the run's seed unless one was set.
        config = sada_config if sada_config is not None else transform.config
        if config.augmentation_seed is None:
            config = dataclasses.replace(config, augmentation_seed=self.args.seed)

        # Data: checked before the first step, indexed, and bound to the shared strengths.
        num_labels = _num_labels(self.model)
        raw = _checked_train_dataset(self.train_dataset.with_format(None), transform, num_labels)
        # Each process keeps the store rows of its own examples (i % W == rank); V and strengths are shared.
        shard = Shard(len(raw), self.args.process_index, self.args.world_size)
        self.sada_state = SADAState(len(raw), num_labels, config, shard=shard, all_gather=self._all_gather)
        self.train_dataset = _with_transform(
            raw, transform.bound_to(self.sada_state.schedule, config), like=self.train_dataset
        )
        self._index_column = transform.index_column
        self._label_column = transform.label_column
        self._image_column = transform.image_column
        self._labels = torch.from_numpy(_raw_column(raw, transform.label_column).astype(np.int64))
        # Collators copied from HF examples keep only the keys they know: set the index aside for them.
        self.data_collator = IndexKeepingCollator(self.data_collator, self._index_column)

        # Probe: this process's examples through the evaluation transform, with the evaluation loader settings.
        self._probe = None
        if config.influence == "probe":
            args = self.args
            self._probe = Probe(
                raw,
                shard.indices(),
                transform.for_evaluation(),
                batch_size=args.eval_batch_size,
                num_workers=args.dataloader_num_workers,
                pin_memory=args.dataloader_pin_memory,
                persistent_workers=args.dataloader_persistent_workers,
                multiprocessing_context=args.dataloader_multiprocessing_context,
                prefetch_factor=args.dataloader_prefetch_factor,
            )
        self._probe_steps: list[int] = []
        self._epoch_first_step = 0
        self._updates_in_epoch = 1
        self._saving_checkpoint = False
        self.add_callback(_SADACallback(self))

    # ---- data ----------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self.sada_state is not None and self._index_column not in self._signature_columns:
            self._signature_columns.append(self._index_column)

    def _remove_unused_columns(self, dataset: datasets.Dataset, description: str | None = None) -> datasets.Dataset:
        """Datasets with a `set_transform` need their raw columns (the image) until the transform has
        run, so filter the transform's output instead of the dataset's columns."""
        if self.sada_state is None or not self.args.remove_unused_columns or dataset.format["type"] != "custom":
            return super()._remove_unused_columns(dataset, description)
        self._set_signature_columns_if_needed()
        transform = _custom_transform(dataset)
        return _with_transform(dataset, _KeepKeys(transform, tuple(self._signature_columns)), like=dataset)

    # ---- the training loop's epochs and steps --------------------------------------------------

    def _run_epoch(self, model, epoch, train_dataloader, steps_in_epoch, num_update_steps_per_epoch, *args, **kwargs):
        """SADA counts epochs from the loop itself (a callback that ends epochs early leaves
        `state.epoch` behind), and schedules this epoch's probes."""
        if self.sada_state is not None:
            state = self.sada_state
            resumed = kwargs.get("resume_from_checkpoint") is not None and epoch == kwargs.get("epochs_trained")
            skipped = kwargs.get("steps_trained_in_current_epoch", 0) if resumed else 0
            continuing = skipped > 0 and not self.args.ignore_data_skip and state.epoch_open
            if not continuing:
                if state.epoch_open:  # saved by the epoch's last step, before its end: end it now
                    self._end_sada_epoch()
                state.begin_epoch()
            done = skipped // self.args.gradient_accumulation_steps if continuing else 0
            self._epoch_first_step = self.state.global_step - done
            self._updates_in_epoch = num_update_steps_per_epoch
            self._probe_steps = (
                mid_epoch_probe_steps(state.config.probe_every, num_update_steps_per_epoch) if state.uses_probe else []
            )
            self._schedule_visits(train_dataloader, epoch)
        return super()._run_epoch(
            model, epoch, train_dataloader, steps_in_epoch, num_update_steps_per_epoch, *args, **kwargs
        )

    def _schedule_visits(self, train_dataloader, epoch: int) -> None:
        """With probes inside the epoch, tell the transform which publication each visit must see:
        strengths published after optimizer step u reach the batches from u * GA + 1 on (batch u * GA is
        built before, by the loader's look-ahead), however far ahead workers prefetch, and on resume."""
        schedule = self.sada_state.schedule
        schedule.visit_publication.zero_()  # 0: the table published last (visits at epoch ends only)
        if not self._probe_steps:
            return
        batch_sampler = train_dataloader.batch_sampler
        sampler = getattr(getattr(batch_sampler, "batch_sampler", batch_sampler), "sampler", None)
        if not isinstance(sampler, (SeedableRandomSampler, SequentialSampler)):
            raise ValueError(
                f"probe_every={self.sada_state.config.probe_every} publishes strengths within epochs, which needs "
                f"the epoch's batch order in advance; the training sampler {type(sampler).__name__} cannot give it "
                "without drawing from the global random generator. Keep accelerator_config's "
                "use_seedable_sampler=True (the default), or use probe_every >= 1."
            )
        train_dataloader.set_epoch(epoch)  # the loop sets it again before iterating: the same order
        first_batches = [step * self.args.gradient_accumulation_steps + 1 for step in self._probe_steps]
        base = self.sada_state.epoch_start_publication
        needed = torch.full_like(schedule.visit_publication, torch.iinfo(torch.int64).max)
        for number, batch in enumerate(batch_sampler):
            rows = torch.as_tensor(batch, dtype=torch.int64)
            # an example repeated to even out batches keeps its first visit's publication (never a later one)
            needed[rows] = torch.minimum(needed[rows], torch.tensor(base + bisect.bisect_right(first_batches, number)))
        schedule.visit_publication.copy_(torch.where(needed == torch.iinfo(torch.int64).max, 0, needed))

    def _sada_step_end(self) -> None:
        """After an optimizer step: run a probe if one falls on it."""
        update = self.state.global_step - self._epoch_first_step
        if update in self._probe_steps:
            self._run_probe(self.sada_state.epoch + update / self._updates_in_epoch)

    def _end_sada_epoch(self) -> None:
        state = self.sada_state
        if state.probe_due_at_epoch_end():
            self._run_probe(float(state.epochs_completed + 1))
        stats = state.end_epoch()
        if stats is not None:
            self.log_sada_statistics(stats)

    # ---- recording predictions -----------------------------------------------------------------

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
        # Gate on model.training: evaluation calls compute_loss too (is_in_train stays True during it).
        records = model.training and not self.sada_state.uses_probe
        if records and indices is None:
            raise ValueError(
                f"SADATrainer: a training batch arrived without the {self._index_column!r} column, so SADA cannot "
                f"tell which examples it holds. The data collator ({_name(self.data_collator.collator)}) "
                f"or a dataset transform drops it. Keep {self._index_column!r} in the transform's output (SADATransform "
                "does), and let the collator receive a list of feature dicts (SADATrainer sets the index aside and "
                "puts it back around it)."
            )
        # Trainer pops the labels before forward() for label smoothing and compute_loss_func: the model
        # then returns no loss, and a tuple output starts with the logits (as LabelSmoother reads it).
        labels_popped = (self.label_smoother is not None or self.compute_loss_func is not None) and "labels" in inputs
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if records:
            if isinstance(outputs, dict):
                logits = outputs["logits"]
            else:
                logits = outputs[0] if labels_popped else outputs[1]
            indices, logits = self._rows_for_this_store(indices, logits.detach().to(torch.float32))
            self.sada_state.observe(indices, logits)
        return (loss, outputs) if return_outputs else loss

    def _rows_for_this_store(self, indices: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (index, logits) rows this process's store shard owns, from every process's batch, on the CPU:
        each row goes only to its owner (all-to-all; measured cheaper than gathering every row everywhere,
        see README)."""
        if self.accelerator.num_processes > 1:
            device = self.args.device
            indices, logits = route_to_owners(indices.to(device), logits.to(device))
        return indices.cpu(), logits.cpu()

    def _all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Equal-sized tensors of every process, concatenated in rank order, on the CPU."""
        return self.accelerator.gather(tensor.to(self.args.device)).cpu()

    def _run_probe(self, at_epoch: float) -> None:
        """Probe this process's examples into its store shard, publish (every process), log, and write
        this process's rows of the dynamics."""
        state = self.sada_state
        indices, logits = self._probe.run(self.model, self.args.device, self.accelerator.autocast)
        if logits.numel() == 0:
            logits = torch.empty(0, state.num_labels)
        state.observe_probe(indices, logits)
        stats = state.end_probe(at_epoch)
        if state.config.save_dynamics:
            rows = probe_rows(
                indices,
                self._labels[indices],
                logits,
                state.store.last_influence(indices),
                state.variance[indices],
                state.schedule.strengths[indices],
                probe=state.probes_completed,
                epoch=at_epoch,
            )
            write_probe(self.args.output_dir, rows, probe=state.probes_completed, rank=self.args.process_index)
            self.accelerator.wait_for_everyone()  # a reader of the dynamics finds every process's rows
        self.log_sada_statistics(stats)

    def log_sada_statistics(self, stats: StrengthStatistics) -> None:
        """Send one publication's statistics through the normal logging path, without consuming the
        `should_log` that Trainer's own epoch-end or step-end log is waiting for."""
        should_log = self.control.should_log
        self.log({f"sada/{name}": value for name, value in stats.scalars().items()})
        self.control.should_log = should_log

    # ---- checkpoints and saved models ----------------------------------------------------------

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        # Before super: it may push to the Hub, and checkpoint rotation follows it. Every process writes its
        # store shard; the process that saves writes what all share.
        state = self.sada_state
        if state is not None and (self.args.should_save or state.shard.world_size > 1):
            folder = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            state.save(os.path.join(self._get_output_dir(trial=trial), folder), write_shared=self.args.should_save)
        self._saving_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._saving_checkpoint = False

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # A saved model (and what push_to_hub uploads) carries the per-example summary, not the
        # resumable N x K state: that lives in checkpoints.
        if self.sada_state is not None and self.args.should_save and not self._saving_checkpoint:
            self.sada_state.save_summary(output_dir if output_dir is not None else self.args.output_dir)
        super().save_model(output_dir, _internal_call)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Upstream copies only the model files of a checkpoint into output_dir before uploading it.
        if self.sada_state is not None and self.args.should_save:
            self.sada_state.save_summary(self.args.output_dir)
        super()._push_from_checkpoint(checkpoint_folder)

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
            self._log_store_size()
        return super().train(
            resume_from_checkpoint=resume_from_checkpoint,
            trial=trial,
            ignore_keys_for_eval=ignore_keys_for_eval,
            **kwargs,
        )

    def _log_store_size(self) -> None:
        state = self.sada_state
        shard = state.shard
        logger.info(
            f"SADA store: rank {shard.rank}/{shard.world_size} holds {shard.size} of {shard.num_examples} examples "
            f"({state.store.nbytes:,} bytes), plus {state.shared_nbytes:,} bytes of per-example vectors every rank "
            "keeps"
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
        if self.sada_state.resharded_from is not None:
            logger.warning(
                f"The SADA state in {checkpoint} was saved by {self.sada_state.resharded_from} processes; this run has "
                f"{self.args.world_size}, so the store was re-sharded (each process read the rows it owns now)."
            )

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        reload_renamed_weights(model if model is not None else self.model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        super()._load_best_model()
        reload_renamed_weights(self.model, self.state.best_model_checkpoint)

    # ---- model card and plots ------------------------------------------------------------------

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """`Trainer`'s card, plus the `sada` tag and a SADA section with the plots."""
        super().create_model_card(*args, **kwargs)
        if self.sada_state is None or not self.is_world_process_zero():
            return
        plots, issues = self._draw_sada_plots(self.args.output_dir)
        update_model_card(os.path.join(self.args.output_dir, "README.md"), self.sada_state, plots, issues)

    def save_sada_plots(self, output_dir: str | None = None) -> list[str]:
        """Draw the strength distribution per publication, the mean strength per class and (with probes)
        the data map as PNG files in `output_dir` (default: args.output_dir); returns their file names."""
        return self._draw_sada_plots(output_dir if output_dir is not None else self.args.output_dir)[0]

    def _draw_sada_plots(self, output_dir: str) -> tuple[list[str], datasets.Dataset | None]:
        """`save_sada_plots`, also returning the label-issue ranking when probes left dynamics (read once)."""
        os.makedirs(output_dir, exist_ok=True)
        state = self.sada_state
        written = []
        if state.history:
            plot_strength_history(state.history, state.num_examples, os.path.join(output_dir, STRENGTHS_PLOT))
            written.append(STRENGTHS_PLOT)
        feature = self.train_dataset.features[self._label_column]
        names = list(getattr(feature, "names", None) or [str(i) for i in range(state.num_labels)])
        path = os.path.join(output_dir, CLASS_STRENGTHS_PLOT)
        plot_class_strengths(state.strengths.numpy(), self._labels.numpy(), names, path)
        written.append(CLASS_STRENGTHS_PLOT)
        if not os.path.isdir(os.path.join(self.args.output_dir, DYNAMICS_DIR)):
            return written, None
        stats = data_map(self.args.output_dir)  # read the dynamics once for the pictures and the card
        plot_data_map(stats, os.path.join(output_dir, DATA_MAP_PLOT))
        issues = rank_label_issues(stats)
        images = self.train_dataset.with_format(None)[self._image_column]
        contact_sheet(images, issues.select(range(min(32, len(issues)))), names, os.path.join(output_dir, SHEET))
        return written + [DATA_MAP_PLOT, SHEET], issues

    def label_issues(self) -> datasets.Dataset:
        """The training examples ranked from most to least likely mislabelled, from the probes' dynamics
        in `args.output_dir` (see `sada_hf.label_issues.label_issues`). Needs `influence='probe'`."""
        if self.sada_state is None or not self.sada_state.uses_probe:
            raise ValueError(
                "label_issues() reads the probes' per-example dynamics: train with "
                "SADAConfig(influence='probe') (and save_dynamics=True, the default)."
            )
        return label_issues(self.args.output_dir)


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


class TransformEpochCallback(TrainerCallback):
    """Keeps a `SADATransform`'s epoch in step with a plain `Trainer`'s loop, so each epoch draws fresh
    augmentations (for baselines trained without `SADATrainer`). Counts the loop's epochs, so a callback
    that ends epochs early does not make epochs repeat their draws."""

    def __init__(self, transform: SADATransform) -> None:
        self.transform = transform
        self._next_epoch = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._next_epoch = math.floor(state.epoch or 0)  # a resumed run continues the checkpoint's epoch

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.transform.set_epoch(self._next_epoch)
        self._next_epoch += 1


class _SADACallback(TrainerCallback):
    """Step and epoch ends for `SADATrainer`. Callbacks are not handed the trainer, so this one holds a
    weak reference: a cycle would delay freeing the trainer, and with it shutting down persistent
    dataloader workers, to a garbage collection (where each worker join times out)."""

    def __init__(self, trainer: SADATrainer) -> None:
        self._trainer = weakref.ref(trainer)

    def on_step_end(self, args, state, control, **kwargs):
        self._trainer()._sada_step_end()

    def on_epoch_end(self, args, state, control, **kwargs):
        self._trainer()._end_sada_epoch()


class _KeepKeys:
    """Wraps a dataset transform and keeps only the output keys the model accepts (picklable)."""

    def __init__(self, transform: Any, keys: tuple[str, ...]) -> None:
        self.transform = transform
        self.keys = keys

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        return {k: v for k, v in self.transform(batch).items() if k in self.keys}


def _name(obj: Any) -> str:
    return getattr(obj, "__name__", type(obj).__name__)


def _refuse_iterable(dataset: Any) -> None:
    if isinstance(dataset, (datasets.IterableDataset, torch.utils.data.IterableDataset)):
        raise TypeError(
            f"SADATrainer needs a map-style `datasets.Dataset` (it keeps one state row per example), got "
            f"{type(dataset).__name__}. Load the dataset without `streaming=True` (or convert it with "
            "`Dataset.from_generator`), or use `transformers.Trainer` for streaming."
        )


def _custom_transform(dataset: Any) -> Any:
    """The transform set with `set_transform` / `with_transform` on a `datasets.Dataset`, or None."""
    if not isinstance(dataset, datasets.Dataset) or dataset.format["type"] != "custom":
        return None
    return dataset.format["format_kwargs"].get("transform")


def _sada_transform_of(dataset: Any) -> SADATransform | None:
    transform = _custom_transform(dataset)
    return transform if isinstance(transform, SADATransform) else None


def _with_transform(dataset: datasets.Dataset, transform: Any, like: datasets.Dataset) -> datasets.Dataset:
    """`dataset` with `transform`, keeping the column selection of `like`'s format (plus any column
    `dataset` has that `like` lacks, such as the index) and its `output_all_columns`."""
    fmt = like.format
    columns = None
    if fmt["columns"] != like.column_names:
        columns = fmt["columns"] + [c for c in dataset.column_names if c not in like.column_names]
    return dataset.with_transform(transform, columns=columns, output_all_columns=fmt["output_all_columns"])


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
        return add_index_column(dataset, index_column)
    index = _raw_column(dataset, index_column)
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


def _raw_column(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """A column as stored (without running the dataset's transform), in the dataset's row order."""
    return np.asarray(dataset.with_format("numpy", columns=[column])[column])


def _checkpoint_epoch(checkpoint: str) -> int:
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    return math.floor(TrainerState.load_from_json(path).epoch) if os.path.isfile(path) else 0
