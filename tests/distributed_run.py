"""Worker script for tests/test_distributed.py, run under `accelerate launch --cpu --num_processes 2`.

For each setting it trains a tiny ViT with SADATrainer on real CIFAR-10 images, then every rank
writes its own copy of the SADA state, so the test can compare ranks bit for bit. It also records
which ranks wrote checkpoints' SADA state.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sada_hf import SADAConfig, SADAState, SADATrainer, SADATransform  # noqa: E402
from sada_hf.data import load_cifar10  # noqa: E402

from conftest import tiny_vit, training_args  # noqa: E402

SETTINGS = {
    "plain": dict(),
    "accumulation": dict(gradient_accumulation_steps=2),
    "uneven": dict(accelerator_config={"even_batches": False}),
    "probe": dict(),  # influence="probe", twice per epoch (see CONFIGS)
}
CONFIGS = {"probe": dict(influence="probe", probe_every=0.5)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    parser.add_argument("--epochs", type=int, default=4)
    options = parser.parse_args()
    output = Path(options.output)
    torch.set_num_threads(1)

    saves = []
    original_save = SADAState.save

    def recording_save(self, directory):
        saves.append(str(directory))
        original_save(self, directory)

    SADAState.save = recording_save

    # 300 examples, batch 32 per process: 10 batches per epoch, the last holding 12 examples.
    dataset = load_cifar10("train", examples_per_class=30, seed=0)
    for name, extra in SETTINGS.items():
        config = SADAConfig(window=2, **CONFIGS.get(name, {}))
        transform = SADATransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, config=config)
        trainer = SADATrainer(
            model=tiny_vit(),
            args=training_args(
                output / name,
                num_train_epochs=options.epochs,
                save_strategy="epoch",
                ddp_find_unused_parameters=False,
                **extra,
            ),
            train_dataset=dataset.with_transform(transform),
        )
        trainer.train()
        rank = trainer.args.process_index
        original_save(trainer.sada_state, output / name / f"rank{rank}")
        (output / name / f"rank{rank}.json").write_text(
            json.dumps({"world_size": trainer.args.world_size, "saves": saves})
        )
        saves.clear()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
