"""`SADATrainer`: `transformers.Trainer` with SADA's per-example augmentation strengths.

Hugging Face glue only: the math lives in `state.py`, `store.py` and `margins.py`, when things happen in
`timeline.py`, the images in `transform.py`, the training dataset's preparation in `training_data.py`,
the probe's forward pass in `probe.py`, what is drawn and written at the end of training in `report.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import math
import os
import shutil
import tempfile
import weakref
from typing import Any

import datasets
import torch
from accelerate.data_loader import SeedableRandomSampler
from torch.utils.data import SequentialSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints
from transformers.utils import logging

from .checkpoints import changed_files, close_record, incomplete_reason, last_complete, open_record, unfinished_reason
from .compat import reload_renamed_weights
from .config import SADAConfig
from .dynamics import probe_rows, write_probe
from .identity import example_identity
from .label_issues import CUTOFF, label_overrides, rank_label_issues
from .losses import class_log_prior, logit_adjusted_cross_entropy
from .probe import Probe
from .report import Report
from .sharding import Shard, route_to_owners
from .state import SADAState, StrengthStatistics
from .timeline import EpochPlan, Timeline
from .training_data import (
    IndexKeepingCollator,
    KeepKeys,
    checked_train_dataset,
    custom_transform,
    raw_column,
    sada_transform_of,
    with_transform,
)
from .transform import SADATransform

# Under the `transformers` logger, so that SADA's lines follow Trainer's own (`log_level`, `log_level_replica`).
logger = logging.get_logger(f"transformers.{__name__}")
# The hidden folder a saved model is written into before its files are renamed into place.
_SAVING_PREFIX = ".saving-"


class SADATrainer(Trainer):
    """A `Trainer` whose training dataset carries a `SADATransform` gets SADA: every example's
    predictions are recorded (from the training step, or from a clean-view probe), the variance of their
    influence becomes a strength, and the transform applies it to the example's next visits. Every such run
    also records each example's training-step margins for free, so it ends with a data map and a ranking of
    likely label errors (`label_issues()`), whatever the strategy.

    Accepts everything `Trainer` does, plus `sada_config` (default: the transform's config) and
    `logit_adjustment` (tau >= 0: train on logits + tau * log(class prior), for long-tailed data; 0, the
    default, is plain cross-entropy). Beyond `Trainer`: datasets with a `set_transform` work with
    `remove_unused_columns=True`, any collator that takes a list of feature dicts works unchanged (the index
    is set aside and put back), and resuming restores the SADA state.

    With any other training dataset SADA is inactive and this is `Trainer`, with one difference kept on
    purpose: resuming a model whose checkpoint keys are renamed on save (ViT, transformers#43701) reloads
    its weights through `from_pretrained` instead of silently keeping a fresh encoder.

    Attributes:
        sada_state (`SADAState` or `None`): strengths, influence and margins of every training example;
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
        logit_adjustment: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.sada_state: SADAState | None = None
        self._saving_checkpoint = False
        if sada_config is not None or sada_transform_of(train_dataset) is not None:
            _refuse_iterable(train_dataset)  # before super: Trainer's own error would not name the fix
        if not (
            isinstance(logit_adjustment, (int, float)) and math.isfinite(logit_adjustment) and logit_adjustment >= 0
        ):
            raise ValueError(
                f"`logit_adjustment` must be a finite number >= 0, got {logit_adjustment!r}; 1 is the usual."
            )
        self.logit_adjustment = float(logit_adjustment)
        super().__init__(model, args, data_collator, train_dataset, eval_dataset, processing_class, **kwargs)
        transform = sada_transform_of(self.train_dataset)
        if transform is not None:
            self._activate(transform, sada_config if sada_config is not None else transform.config)
        elif self.train_dataset is not None:
            logger.warning(
                "SADATrainer: the training dataset has no SADATransform, so SADA is inactive and this is "
                "Trainer. Enable it with `train_dataset.set_transform(SADATransform(...))`."
            )
        if self.logit_adjustment:
            self._adjust_logits()

    def _adjust_logits(self) -> None:
        """Train on logits + tau * log(class prior) (`losses.py`), through Trainer's `compute_loss_func`."""
        if self.sada_state is None:
            raise ValueError(
                "`logit_adjustment` needs the training labels' class priors, which SADATrainer reads through the "
                "training dataset's SADATransform; this dataset has none. Set one (strategy 'none' to train without "
                "augmentation)."
            )
        if self.compute_loss_func is not None or self.label_smoother is not None:
            raise ValueError(
                "`logit_adjustment` replaces the training loss, so it cannot be combined with `compute_loss_func` or "
                "`label_smoothing_factor`: drop one of them."
            )
        self._class_log_prior = class_log_prior(self.sada_state.labels, self.sada_state.num_labels)
        self.compute_loss_func = self._logit_adjusted_loss

    def _logit_adjusted_loss(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        tau = self.logit_adjustment if self.model.training else 0.0  # evaluation scores the plain logits
        return logit_adjusted_cross_entropy(logits, labels, self._class_log_prior, tau, num_items_in_batch)

    def _activate(self, transform: SADATransform, config: SADAConfig) -> None:
        """Check and index the training dataset, build the SADA state and bind the transform to it."""
        if config.augmentation_seed is None:  # the run's seed, unless one was set
            config = dataclasses.replace(config, augmentation_seed=self.args.seed)
        num_labels = _num_labels(self.model)
        raw = checked_train_dataset(self.train_dataset.with_format(None), transform, num_labels)
        labels = torch.from_numpy(raw_column(raw, transform.label_column).astype("int64"))
        # Each process keeps the store rows of its own examples (i % W == rank); V and strengths are shared.
        shard = Shard(len(raw), self.args.process_index, self.args.world_size)
        probe_every = config.probe_every if config.influence == "probe" else None
        timeline = Timeline(probe_every, self.args.gradient_accumulation_steps, self.args.ignore_data_skip)
        identity = example_identity(raw, transform.image_column, transform.id_column)  # the user's row and id
        decide_labels = None
        if config.label_issue_action != "keep":  # act on label issues in this training (label_issues.py)
            decide_labels = functools.partial(
                label_overrides, action=config.label_issue_action, cutoff=config.label_issue_cutoff
            )
        self.sada_state = SADAState(
            labels,
            num_labels,
            config,
            shard,
            self._all_gather,
            timeline,
            identity=identity,
            decide_labels=decide_labels,
        )
        self.train_dataset = with_transform(
            raw, transform.bound_to(self.sada_state.schedule, config), like=self.train_dataset
        )
        self._index_column = transform.index_column
        self._label_column = transform.label_column
        self._image_column = transform.image_column
        # Collators copied from HF examples keep only the keys they know: set the index aside for them.
        self.data_collator = IndexKeepingCollator(self.data_collator, self._index_column)
        self._probe = self._build_probe(raw, shard, transform) if probe_every is not None else None
        self._resuming = False
        self.add_callback(_SADACallback(self))

    def _build_probe(self, raw: datasets.Dataset, shard: Shard, transform: SADATransform) -> Probe:
        """This process's examples through the evaluation transform, with the evaluation loader settings."""
        args = self.args
        return Probe(
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

    # ---- data ----------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self) -> None:
        # Private: the one place Trainer decides which columns reach the model (TRL extends it the same way).
        super()._set_signature_columns_if_needed()
        if self.sada_state is not None and self._index_column not in self._signature_columns:
            self._signature_columns.append(self._index_column)

    def _remove_unused_columns(self, dataset: datasets.Dataset, description: str | None = None) -> datasets.Dataset:
        # Private: Trainer drops a `set_transform` dataset's raw columns (the image) before its transform
        # runs, and no public hook sees the dataset in between; filter the transform's output instead.
        if self.sada_state is None or not self.args.remove_unused_columns or dataset.format["type"] != "custom":
            return super()._remove_unused_columns(dataset, description)
        self._set_signature_columns_if_needed()
        keep = KeepKeys(custom_transform(dataset), tuple(self._signature_columns))
        return with_transform(dataset, keep, like=dataset)

    # ---- the training loop's events (driven by _SADACallback) ----------------------------------

    def _sada_epoch_begin(self, global_step: int, train_dataloader: Any) -> None:
        """Count the loop's epoch (ending one a checkpoint left open first) and schedule its visits."""
        state = self.sada_state
        plan = state.timeline.plan_epoch(global_step, len(train_dataloader))
        if not plan.continues_open_epoch:
            if state.epoch_open:  # saved by the epoch's last step, before its end: end it now
                self._end_sada_epoch()
            state.begin_epoch()
        self._schedule_visits(train_dataloader, plan)

    def _schedule_visits(self, train_dataloader: Any, plan: EpochPlan) -> None:
        """With probes inside the epoch, tell the transform which publication each visit must see (however
        far ahead workers prefetch, and on resume): that needs the epoch's batch order in advance."""
        schedule = self.sada_state.schedule
        if not plan.probe_steps:
            schedule.visit_publication.zero_()  # 0: the table published last
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
        train_dataloader.set_epoch(plan.loop_epoch)  # the loop sets it again before iterating: the same order
        publications = self.sada_state.timeline.visit_publications(batch_sampler, self.sada_state.num_examples)
        schedule.visit_publication.copy_(publications)

    def _sada_step_end(self, global_step: int) -> None:
        """After an optimizer step: run a probe if one falls on it."""
        at_epoch = self.sada_state.timeline.probe_after_step(global_step)
        if at_epoch is not None:
            self._run_probe(at_epoch)

    def _end_sada_epoch(self) -> None:
        state = self.sada_state
        if state.probe_due_at_epoch_end():
            self._run_probe(float(state.epochs_completed + 1))
        stats = state.end_epoch()
        if stats is not None:
            self.log_sada_statistics(stats)

    def _sada_train_end(self) -> None:
        """Write the per-example summary, the plots and the label-issue contact sheet to `output_dir` (the
        trainer has the training images, so a run from any script gets them)."""
        if self.args.should_save:
            self._report().write_all(self.args.output_dir)

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
        if model.training and indices is None:
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
        if model.training:
            if isinstance(outputs, dict):
                logits = outputs["logits"]
            else:
                logits = outputs[0] if labels_popped else outputs[1]
            indices, logits = self._rows_for_this_store(indices, logits.detach().to(torch.float32))
            self.sada_state.observe(indices, logits)
        return (loss, outputs) if return_outputs else loss

    def _rows_for_this_store(self, indices: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (index, logits) rows this process's shard owns, from every process's batch, on the CPU: each
        row goes only to its owner (all-to-all; measured cheaper than gathering every row everywhere)."""
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
                state.labels[indices],
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
        # Private, because a checkpoint must be complete or never resumed from (docs/reliability.md): its record
        # is opened before anything is written and closed once every process has written its part, and old
        # checkpoints are deleted only after that (super would delete them before the new one is complete).
        # The SADA state goes in first, before super pushes the folder to the Hub.
        run_dir = self._get_output_dir(trial=trial)
        folder = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        if self.args.should_save:
            self._open_checkpoint(folder)
        self.accelerator.wait_for_everyone()
        state = self.sada_state
        if state is not None and (self.args.should_save or state.shard.world_size > 1):
            state.save(folder, write_shared=self.args.should_save)
        save_total_limit, self.args.save_total_limit = self.args.save_total_limit, None
        self._saving_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._saving_checkpoint = False
            self.args.save_total_limit = save_total_limit
        self.accelerator.wait_for_everyone()  # every process's files are in the folder
        if self.args.should_save:
            close_record(folder)
            rotate_checkpoints(run_dir, save_total_limit, self.state.best_model_checkpoint, use_mtime=True)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Private: super pushes the folder before it returns, and what reaches the Hub must be resumable, so
        # the record is closed first (every process has written its files by now).
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            close_record(checkpoint_folder)
        super()._push_from_checkpoint(checkpoint_folder)

    def _open_checkpoint(self, folder: str) -> None:
        reason = incomplete_reason(folder) if os.path.isdir(folder) else None
        if reason is not None:
            logger.warning(f"Overwriting the incomplete checkpoint {folder} ({reason}) with this step's checkpoint.")
        open_record(folder)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # A saved model (and what push_to_hub uploads) carries the per-example summary, not the
        # resumable N x K state: that lives in checkpoints.
        if self.sada_state is not None and self.args.should_save and not self._saving_checkpoint:
            self.sada_state.save_summary(output_dir if output_dir is not None else self.args.output_dir)
        super().save_model(output_dir, _internal_call)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # Private: a saved model's files each appear whole or not at all (docs/reliability.md). They are
        # written into a hidden folder beside them, then renamed over the old ones. Checkpoints have their
        # record instead, and processes that write nothing return inside super.
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self._saving_checkpoint or not self.args.should_save:
            return super()._save(output_dir, state_dict)
        os.makedirs(output_dir, exist_ok=True)
        for leftover in glob.glob(os.path.join(output_dir, f"{_SAVING_PREFIX}*")):  # a save that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        staging = tempfile.mkdtemp(dir=output_dir, prefix=_SAVING_PREFIX)
        try:
            super()._save(staging, state_dict)
            _move_into(staging, output_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
        **kwargs: Any,
    ):
        checkpoint = self._checkpoint_to_resume(resume_from_checkpoint)
        if self.sada_state is not None:
            self._restore_sada_state(checkpoint)
            self._resuming = checkpoint is not None
            self._log_store_size()
        return super().train(
            resume_from_checkpoint=checkpoint,
            trial=trial,
            ignore_keys_for_eval=ignore_keys_for_eval,
            **kwargs,
        )

    def _checkpoint_to_resume(self, resume_from_checkpoint: str | bool | None) -> str | None:
        """The checkpoint `train(resume_from_checkpoint=...)` resumes from: `True` is the newest complete one
        (skipping, with a warning each, incomplete ones); a path must be one whose save finished (a warning
        says if its files changed since); `None` or `False` is none."""
        if resume_from_checkpoint is None or resume_from_checkpoint is False:
            return None
        output_dir = self.args.output_dir
        if resume_from_checkpoint is True:
            checkpoint, skipped = last_complete(output_dir)
            for incomplete in skipped:
                logger.warning(f"Skipping the incomplete checkpoint {incomplete.path}: {incomplete.incomplete}.")
            if checkpoint is None:
                raise ValueError(
                    f"No valid checkpoint found in output directory ({output_dir}): no complete checkpoint to resume "
                    "from. Train without resume_from_checkpoint to start over."
                )
            return str(checkpoint.path)
        if not os.path.isdir(resume_from_checkpoint):
            return resume_from_checkpoint  # Trainer's own error names it
        reason = unfinished_reason(resume_from_checkpoint)
        if reason is not None:
            complete, _ = last_complete(os.path.dirname(os.path.abspath(resume_from_checkpoint)))
            other = f"the last complete one is {complete.path}" if complete else "there is no complete one beside it"
            raise ValueError(
                f"Cannot resume from {resume_from_checkpoint}: the checkpoint is incomplete ({reason}). Resume from "
                f"another checkpoint ({other}), or pass resume_from_checkpoint=True for the last complete one."
            )
        changed = changed_files(resume_from_checkpoint)
        if changed is not None:
            logger.warning(
                f"Resuming from {resume_from_checkpoint} as asked, although it differs from the checkpoint that was "
                f"saved: {changed}."
            )
        return resume_from_checkpoint

    def _log_store_size(self) -> None:
        state = self.sada_state
        shard = state.shard
        logger.info(
            f"SADA store: rank {shard.rank}/{shard.world_size} holds {shard.size} of {shard.num_examples} examples "
            f"({state.store.nbytes + state.margins.nbytes:,} bytes), plus {state.shared_nbytes:,} bytes of "
            "per-example vectors every rank keeps"
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
        if self.sada_state.margins_missing_on_load:
            logger.warning(
                f"The SADA state in {checkpoint} was written by sada_hf < 0.4, which kept no training-step margins: "
                "the data map and label issues of this run cover the epochs from now on."
            )

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        # Private: transformers#43701 (see compat.py) must be fixed with SADA inactive too, where no callback
        # of ours runs, between Trainer's loading of the weights and the first step.
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        reload_renamed_weights(model if model is not None else self.model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        # Private: the same bug when the best checkpoint is loaded at the end of training.
        super()._load_best_model()
        reload_renamed_weights(self.model, self.state.best_model_checkpoint)

    # ---- what a run leaves behind --------------------------------------------------------------

    def _report(self) -> Report:
        raw = self.train_dataset.with_format(None)
        id2label = getattr(getattr(self.model, "config", None), "id2label", None)
        return Report(self.sada_state, raw, self._image_column, raw.features.get(self._label_column), id2label)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """`Trainer`'s card, plus the `sada` tag and a SADA section with the plots."""
        super().create_model_card(*args, **kwargs)
        if self.sada_state is not None and self.is_world_process_zero():
            self._report().update_model_card(self.args.output_dir)

    def save_sada_plots(self, output_dir: str | None = None) -> list[str]:
        """Draw the strengths over training, the mean strength per class, the data map and the label-issue
        contact sheet as PNG files in `output_dir` (default: args.output_dir); returns their file names."""
        return self._report().draw_plots(output_dir if output_dir is not None else self.args.output_dir)

    def label_issues(self, ranking: str | None = None, cutoff: str = CUTOFF) -> datasets.Dataset:
        """The training examples ranked from most to least likely mislabelled, from this run's training-step
        margins (and its probes' dynamics in `args.output_dir`, with probes); `ranking` picks another entry
        of `sada_hf.label_issues.RANKINGS`, `cutoff` another rule of `CUTOFFS` for the `suspect` column; see
        `sada_hf.label_issues.rank_label_issues`."""
        if self.sada_state is None:
            raise ValueError(
                "label_issues() reads the training dynamics SADATrainer records for a training dataset with a "
                "SADATransform; this trainer's dataset has none. Set one (any strategy, 'none' included)."
            )
        return rank_label_issues(self._report().statistics(self.args.output_dir), ranking, cutoff)


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
    """Feeds the training loop's events to `SADATrainer`. Callbacks are not handed the trainer, so this one
    holds a weak reference: a cycle would delay freeing the trainer, and with it shutting down persistent
    dataloader workers, to a garbage collection (where each worker join times out)."""

    def __init__(self, trainer: SADATrainer) -> None:
        self._trainer = weakref.ref(trainer)

    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self._trainer()
        sada_state = trainer.sada_state
        sada_state.timeline.start(state.global_step, resumed=trainer._resuming)
        sada_state.label_issue_epoch = math.ceil(sada_state.config.label_issue_start * state.num_train_epochs)

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self._trainer()._sada_epoch_begin(state.global_step, train_dataloader)

    def on_step_end(self, args, state, control, **kwargs):
        self._trainer()._sada_step_end(state.global_step)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._trainer()._end_sada_epoch()

    def on_train_end(self, args, state, control, **kwargs):
        self._trainer()._sada_train_end()

    def on_push_begin(self, args, state, control, **kwargs):
        # A push from a checkpoint copies only the model files into output_dir: add the summary (push_to_hub
        # fires this event on every process; one writes).
        if args.should_save:
            self._trainer().sada_state.save_summary(args.output_dir)


def _move_into(source: str, destination: str) -> None:
    """Rename every file under `source` to the same place under `destination`, replacing what is there."""
    for root, _, files in os.walk(source):
        target = os.path.join(destination, os.path.relpath(root, source))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.replace(os.path.join(root, name), os.path.join(target, name))


def _name(obj: Any) -> str:
    return getattr(obj, "__name__", type(obj).__name__)


def _refuse_iterable(dataset: Any) -> None:
    if isinstance(dataset, (datasets.IterableDataset, torch.utils.data.IterableDataset)):
        raise TypeError(
            f"SADA needs a map-style `datasets.Dataset` (it keeps one state row per example), got "
            f"{type(dataset).__name__}: load it without `streaming=True` (or turn a stream into one with "
            "`Dataset.from_generator`) and `set_transform` the SADATransform on it; to train a stream as "
            "`transformers.Trainer` does, give it neither a SADATransform nor a sada_config."
        )


def _num_labels(model: torch.nn.Module) -> int:
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if not isinstance(num_labels, int) or num_labels < 2:
        raise ValueError(
            f"SADATrainer needs a classification model with `config.num_labels >= 2`, got {num_labels!r}: SADA "
            "compares predicted class distributions."
        )
    return num_labels


def _checkpoint_epoch(checkpoint: str) -> int:
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    return math.floor(TrainerState.load_from_json(path).epoch) if os.path.isfile(path) else 0
