"""Wall-clock overhead of SADATrainer over Trainer with the identical transform (fixed strength), with
the training-step signal and with a probe at each epoch end.

    python benchmarks/overhead.py                 # CPU: small ResNet and ViT on 2,000 CIFAR-10 images
    python benchmarks/overhead.py --models resnet-accuracy --images 5000 --workers 1   # the accuracy recipe
    python benchmarks/overhead.py --device-note "H100, bf16" --models vit-base --bf16 --workers 8 --warm-up  # on a GPU

All trainers get the same data, model initialisation, seed and SADATransform (strategy
'trivialaugment' with warmup_strength 0.5, so strengths never change); only SADA's bookkeeping
(popping the index, storing the predictions, epoch ends) and, in probe mode, the probe's forward pass
over every training example differ. Runs alternate Trainer / SADATrainer / SADATrainer with probes;
the epoch time (probe included) is the median over runs of each run's median epoch (the first epoch,
with its warm-up, excluded), and the training time the median of whole trainings (every epoch). On a GPU,
`--warm-up` trains once untimed first, so that no trainer carries the device's warm-up. Each trainer's
loader workers are shut down after its run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time

import torch
from transformers import (
    ResNetConfig,
    ResNetForImageClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
)

from sada_hf import SADAConfig, SADATrainer, SADATransform, TransformEpochCallback
from sada_hf.data import load_cifar10

MODELS = {
    "resnet-small": (
        32,
        lambda: ResNetForImageClassification(
            ResNetConfig(
                embedding_size=64, hidden_sizes=[64, 128, 256], depths=[2, 2, 2], layer_type="basic", num_labels=10
            )
        ),
    ),
    "vit-small": (
        32,
        lambda: ViTForImageClassification(
            ViTConfig(
                image_size=32,
                patch_size=4,
                hidden_size=128,
                num_hidden_layers=6,
                num_attention_heads=4,
                intermediate_size=256,
                num_labels=10,
            )
        ),
    ),
    # The model of benchmarks/accuracy.py (0.7M parameters).
    "resnet-accuracy": (
        32,
        lambda: ResNetForImageClassification(
            ResNetConfig(
                embedding_size=32, hidden_sizes=[32, 64, 128], depths=[2, 2, 2], layer_type="basic", num_labels=10
            )
        ),
    ),
    "vit-base": (224, lambda: ViTForImageClassification(ViTConfig(image_size=224, patch_size=16, num_labels=10))),
}


class EpochTimer(TrainerCallback):
    def __init__(self):
        self.durations = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.durations.append(time.perf_counter() - self.start)


def timed_run(
    trainer_class, model_name: str, dataset, options, step_times: list[float], influence="train_step"
) -> tuple[float, float]:
    """The median epoch (the first excluded) and the whole training, in seconds, of one run."""
    size, build = MODELS[model_name]
    config = SADAConfig(strategy="trivialaugment", warmup_strength=0.5, augmentation_seed=0, influence=influence)
    transform = SADATransform(size=size, config=config)
    torch.manual_seed(0)
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir, num_train_epochs=options.epochs, per_device_train_batch_size=options.batch_size,
            per_device_eval_batch_size=options.eval_batch_size, save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True, seed=0,
            remove_unused_columns=False, dataloader_num_workers=options.workers, bf16=options.bf16,
            dataloader_persistent_workers=options.workers > 0,
        )  # fmt: skip
        callbacks = [] if trainer_class is SADATrainer else [TransformEpochCallback(transform)]
        trainer = trainer_class(
            model=build(), args=args, train_dataset=dataset.with_transform(transform), callbacks=callbacks
        )
        trainer.add_callback(timer)  # last: the epoch time includes SADA's epoch end (and its probe)
        if trainer_class is SADATrainer and influence == "train_step":
            observe = trainer.sada_state.observe

            def timed_observe(indices, logits):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                start = time.perf_counter()
                observe(indices, logits)
                step_times.append(time.perf_counter() - start)

            trainer.sada_state.observe = timed_observe
        seconds = trainer.train().metrics["train_runtime"]
        trainer.accelerator.free_memory()  # drops the prepared loaders: their persistent workers stop with them
        del trainer
        gc.collect()
    return statistics.median(timer.durations[1:]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["resnet-small", "vit-small"])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-batch-size", type=int, default=500, help="the probe's batch size")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--warm-up", action="store_true", help="one untimed Trainer run first (GPU warm-up)")
    parser.add_argument("--device-note", default=f"CPU, {torch.get_num_threads()} threads")
    options = parser.parse_args()
    dataset = load_cifar10("train", examples_per_class=options.images // 10)
    dataset = dataset.add_column("index", list(range(len(dataset))))

    print(
        f"# SADATrainer overhead: {len(dataset)} CIFAR-10 images, batch {options.batch_size}, {options.epochs} epochs, "
        f"{options.runs} interleaved runs each, {options.device_note}\n"
    )
    print(
        "| model | Trainer s/epoch | SADATrainer train_step s/epoch | ratio | bookkeeping ms/step (median) "
        "| SADATrainer probe s/epoch | ratio | whole training: Trainer s | train_step ratio | probe ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model_name in options.models:
        if options.warm_up:
            timed_run(Trainer, model_name, dataset, options, [])
        plain, sada, probe, steps = [], [], [], []
        for _ in range(options.runs):
            plain.append(timed_run(Trainer, model_name, dataset, options, []))
            sada.append(timed_run(SADATrainer, model_name, dataset, options, steps))
            probe.append(timed_run(SADATrainer, model_name, dataset, options, [], influence="probe"))
        (base, base_all), (ours, ours_all), (probed, probed_all) = (
            (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
            for runs in (plain, sada, probe)
        )
        print(
            f"| {model_name} | {base:.2f} | {ours:.2f} | {ours / base:.3f} | {statistics.median(steps) * 1e3:.2f} "
            f"| {probed:.2f} | {probed / base:.3f} | {base_all:.2f} | {ours_all / base_all:.3f} "
            f"| {probed_all / base_all:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
