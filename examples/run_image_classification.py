#!/usr/bin/env python
"""Fine-tune an image classifier with SADA, following Hugging Face's image-classification example.

The job is `sada_hf.job.main`, in the package so that `sada-hf train` runs exactly the same code; open
sada_hf/job.py to read it top to bottom (it is Hugging Face's example with `Trainer` -> `SADATrainer` and a
`SADATransform` on the training dataset) or to copy it as the start of your own script.

    # embedded default: scikit-learn's digits, a small ViT from a config, offline, a few minutes on CPU
    python examples/run_image_classification.py --output_dir sada-digits

    # fine-tune a pretrained ViT on a Hub dataset (or --train_dir/--validation_dir for an imagefolder;
    # --model_name_or_path also takes a local save_pretrained folder)
    python examples/run_image_classification.py --dataset_name uoft-cs/cifar10 --image_column_name img \\
        --model_name_or_path google/vit-base-patch16-224-in21k --ignore_mismatched_sizes \\
        --num_train_epochs 20 --learning_rate 5e-5 --output_dir vit-cifar10-sada

    # many GPUs: accelerate launch examples/run_image_classification.py ...
"""

import sys

from sada_hf.job import main

if __name__ == "__main__":
    main(sys.argv[1:])
