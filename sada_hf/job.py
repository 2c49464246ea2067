"""The main job: `sada-hf train`, also run by examples/run_image_classification.py. It is Hugging Face's
image-classification example with one change, `Trainer` -> `SADATrainer` with a `SADATransform` on the
training dataset, and reads top to bottom in `main`; the steps it shares with other scripts live in
`arguments.py`, `data.py`, `modeling.py` and `evaluation.py`."""

from __future__ import annotations

import os
import shutil
from typing import Any

from transformers import TrainingArguments, set_seed
from transformers.utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME, logging

from .arguments import JobArguments, ModelArguments, parse_train_arguments
from .checkpoints import checkpoints, last_complete
from .config import SADAConfig
from .data import DataArguments, label_names, load_splits
from .evaluation import build_compute_metrics
from .modeling import build_model_and_processor
from .trainer import SADATrainer
from .transform import EvalTransform, SADATransform, processor_size

logger = logging.get_logger(f"transformers.{__name__}")


def main(argv: list[str]) -> dict[str, float]:
    """Data -> model -> SADA transforms -> SADATrainer -> train, evaluate, model card (or Hub push).
    Returns the evaluation metrics."""
    # HfArgumentParser over (ModelArguments, DataArguments, SADAConfig, TrainingArguments), with the
    # defaults of `sada-hf train` (evaluate and save each epoch; the digits run's training settings).
    model_args, data_args, sada_config, training_args, job_args = parse_train_arguments(argv)
    logging.set_verbosity(training_args.get_process_log_level())
    set_seed(training_args.seed)

    # Data: a Hub dataset, an imagefolder, or a built-in set (digits, the local CIFAR-10 archive).
    splits = load_splits(data_args, seed=training_args.seed, cache_dir=model_args.cache_dir, token=model_args.token)
    labels = label_names(splits["train"], data_args.label_column_name)

    # Model: a pretrained checkpoint with a new head, or a small ViT/ResNet built from a config.
    model, processor = build_model_and_processor(model_args, labels)

    # Transforms: SADA for training (decode -> crop + flip -> SADA op -> pixel_values), plain for evaluation.
    train_transform, eval_transform = build_transforms(
        data_args, processor, sada_config, from_checkpoint=model_args.model_name_or_path is not None
    )
    splits["train"].set_transform(train_transform)
    splits["validation"].set_transform(eval_transform)

    trainer = SADATrainer(  # was: Trainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=processor,
        compute_metrics=build_compute_metrics(
            splits["train"].with_format("numpy")[data_args.label_column_name], len(labels)
        ),
        sada_config=sada_config,
        logit_adjustment=job_args.logit_adjustment,
    )

    # Train (resuming a rerun command from its last complete checkpoint), save the model with its per-example
    # summary, evaluate, write the model card with its SADA section and plots (or push it all with --push_to_hub).
    resume = checkpoint_to_resume(trainer, job_args)
    return train_evaluate_and_publish(trainer, model_args, data_args, training_args, resume)


def build_transforms(
    data: DataArguments, processor: Any, config: SADAConfig, from_checkpoint: bool = False
) -> tuple[SADATransform, EvalTransform]:
    """The training transform (SADA) and the matching evaluation transform. Unless the options say
    otherwise, a checkpoint of 224 pixels or more (pretrained on ImageNet-like images) is cropped with
    RandomResizedCrop as Hugging Face's run_image_classification.py does; a small image pads and crops back,
    as on CIFAR (RandomResizedCrop's 8% of a 32-pixel image is 9 pixels wide). Digits are not flipped: a
    mirrored digit is another glyph."""
    flip = (
        data.horizontal_flip
        if data.horizontal_flip is not None
        else not (data.uses_builtin and data.builtin_dataset == "digits")
    )
    crop = data.crop
    if crop is None:
        crop = "random_resized_crop" if from_checkpoint and min(processor_size(processor)) >= 224 else "random_crop"
    train = SADATransform(
        processor,
        crop=crop,
        horizontal_flip=flip,
        image_column=data.image_column_name,
        label_column=data.label_column_name,
        id_column=data.id_column_name,
        config=config,
    )
    return train, train.for_evaluation()


def checkpoint_to_resume(trainer: SADATrainer, job_args: JobArguments) -> str | bool | None:
    """What the job resumes from: `--resume_from_checkpoint` (a path, or True for the last complete one) if
    given; else, so that rerunning a killed command continues it, the last complete checkpoint in
    `--output_dir`, unless `--overwrite_output_dir` deletes them all to start over. Refuses to train over a
    saved model that no checkpoint can resume."""
    args = trainer.args
    if args.resume_from_checkpoint is not None:
        return True if args.resume_from_checkpoint in ("True", "true") else args.resume_from_checkpoint
    if job_args.overwrite_output_dir:
        found = checkpoints(args.output_dir)
        if found and trainer.is_world_process_zero():
            logger.warning(f"--overwrite_output_dir: deleting the {len(found)} checkpoints in {args.output_dir}.")
            for checkpoint in found:
                shutil.rmtree(checkpoint.path)
        trainer.accelerator.wait_for_everyone()
        return None
    complete, _ = last_complete(args.output_dir)
    if complete is not None:
        logger.warning(
            f"Resuming from {complete.path}, the last complete checkpoint in {args.output_dir} (pass "
            "--overwrite_output_dir to start over)."
        )
        return True  # SADATrainer names any newer, incomplete checkpoint it skips
    saved_model = [
        name for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME) if os.path.isfile(os.path.join(args.output_dir, name))
    ]
    if saved_model:
        raise ValueError(
            f"{args.output_dir} holds a trained model ({saved_model[0]}) and no complete checkpoint to resume from: "
            "training would overwrite it. Pass --overwrite_output_dir to train again there, or choose another "
            "--output_dir."
        )
    return None


def train_evaluate_and_publish(
    trainer: SADATrainer,
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    resume: str | bool | None = None,
) -> dict[str, float]:
    """Train (resuming from `resume`: a checkpoint path, or True for the last complete one), save the
    model with its per-example summary, evaluate, then write the model card (SADA section, plots, `sada`
    tag) or push everything to the Hub. Returns the evaluation metrics."""
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()  # also writes the per-example summary (sada_examples.parquet)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()

    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)

    card = dict(
        finetuned_from=model_args.model_name_or_path,
        tasks="image-classification",
        dataset=data_args.dataset_name or data_args.train_dir or data_args.builtin_dataset,
        tags=["image-classification", "vision"],
    )
    if training_args.push_to_hub:
        trainer.push_to_hub(**card)
    else:
        trainer.create_model_card(**card)
    if trainer.is_world_process_zero():
        print(f"eval accuracy: {metrics['eval_accuracy']:.4f}  (model, card and plots in {training_args.output_dir})")
    return metrics
