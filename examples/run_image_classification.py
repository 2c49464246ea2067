#!/usr/bin/env python
"""Fine-tune an image classifier with SADA, following Hugging Face's image-classification example.

The one change from that example: `Trainer` becomes `SADATrainer`, and the training dataset's
transform is a `SADATransform`, so every example gets its own augmentation strength each epoch.

    # embedded default: scikit-learn's digits, a small ViT from a config, offline, a few minutes on CPU
    python examples/run_image_classification.py --output_dir sada-digits

    # fine-tune a pretrained ViT on a Hub dataset (or --train_dir/--validation_dir for an imagefolder)
    python examples/run_image_classification.py --dataset_name uoft-cs/cifar10 \
        --model_name_or_path google/vit-base-patch16-224-in21k --ignore_mismatched_sizes \
        --num_train_epochs 20 --learning_rate 5e-5 --output_dir vit-cifar10-sada

    # many GPUs: accelerate launch examples/run_image_classification.py ...
"""

import sys

from transformers import set_seed

from sada_hf import SADATrainer
from sada_hf.cli import parse_train_arguments
from sada_hf.job import (
    build_compute_metrics,
    build_model_and_processor,
    build_transforms,
    label_names,
    load_splits,
    train_evaluate_and_publish,
)


def main() -> None:
    # HfArgumentParser over (ModelArguments, DataArguments, SADAConfig, TrainingArguments), with the
    # defaults of `sada-hf train` (evaluate and save each epoch; the digits run's training settings).
    model_args, data_args, sada_config, training_args = parse_train_arguments(sys.argv[1:])
    set_seed(training_args.seed)

    # Data: a Hub dataset, an imagefolder, or a built-in set (digits, the local CIFAR-10 archive).
    splits = load_splits(data_args, seed=training_args.seed, cache_dir=model_args.cache_dir, token=model_args.token)
    labels = label_names(splits["train"], data_args.label_column_name)

    # Model: a pretrained checkpoint with a new head, or a small ViT/ResNet built from a config.
    model, processor = build_model_and_processor(model_args, labels)

    # Transforms: SADA for training (decode -> crop + flip -> SADA op -> pixel_values), plain for evaluation.
    train_transform, eval_transform = build_transforms(data_args, processor, sada_config)
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
    )

    # Train (or resume), save the model and SADA state, evaluate, write the model card with its SADA
    # section and plots (or push it all with --push_to_hub).
    train_evaluate_and_publish(trainer, model_args, data_args, training_args)


if __name__ == "__main__":
    main()
