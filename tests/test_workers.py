"""Dataloader workers (none, forked, spawned; persistent or not) produce the same augmented bytes
and always read the strengths published at the last epoch end."""

from __future__ import annotations

import hashlib
import math

import pytest
from transformers import TrainerCallback

from sada_hf import SADAConfig, SADATrainer

from conftest import tiny_vit, training_args
from reporting_transform import ReportingTransform

EPOCHS = 4  # V needs 3 visits: strengths are published at the end of epoch 2 (0-based) and used in 3
CONFIGS = {
    "main_process": dict(dataloader_num_workers=0),
    "fork": dict(dataloader_num_workers=2, dataloader_multiprocessing_context="fork"),
    "fork_persistent": dict(
        dataloader_num_workers=2, dataloader_multiprocessing_context="fork", dataloader_persistent_workers=True
    ),
    "spawn": dict(dataloader_num_workers=2, dataloader_multiprocessing_context="spawn"),
    "spawn_persistent": dict(
        dataloader_num_workers=2, dataloader_multiprocessing_context="spawn", dataloader_persistent_workers=True
    ),
}


class RecordingTrainer(SADATrainer):
    """Records, per visit, what the workers reported and a digest of the pixels they produced."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        strengths, epochs = inputs.pop("seen_strength"), inputs.pop("seen_epoch")
        for epoch, index, strength, pixels in zip(
            epochs.tolist(), inputs["index"].tolist(), strengths.tolist(), inputs["pixel_values"]
        ):
            self.seen[(epoch, index)] = (strength, hashlib.sha1(pixels.numpy().tobytes()).hexdigest())
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


class Published(TrainerCallback):
    def __init__(self, trainer):
        self.trainer, self.by_epoch = trainer, {}

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.by_epoch[math.floor(state.epoch)] = self.trainer.sada_state.strengths


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cifar_train):
    dataset = cifar_train.select(range(120))
    results = {}
    for name, worker_args in CONFIGS.items():
        config = SADAConfig(window=2, normalization="rank", augmentation_seed=3)
        transform = ReportingTransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, config=config)
        trainer = RecordingTrainer(
            model=tiny_vit(),
            args=training_args(
                tmp_path_factory.mktemp(name), num_train_epochs=EPOCHS, remove_unused_columns=False, **worker_args
            ),
            train_dataset=dataset.with_transform(transform),
        )
        trainer.seen = {}
        published = Published(trainer)
        trainer.add_callback(published)
        trainer.train()
        results[name] = (trainer.seen, published.by_epoch)
    return results


@pytest.mark.parametrize("name", CONFIGS)
def test_workers_use_the_strengths_published_at_the_last_epoch_end(runs, name):
    seen, published = runs[name]
    assert len(seen) == EPOCHS * 120
    defined = 0
    for (epoch, index), (strength, _) in seen.items():
        expected = float(published[epoch][index])
        assert (math.isnan(strength) and math.isnan(expected)) or strength == expected, (epoch, index)
        defined += not math.isnan(strength)
    assert defined == 120


@pytest.mark.parametrize("name", [n for n in CONFIGS if n != "main_process"])
def test_workers_produce_the_same_bytes_as_the_main_process(runs, name):
    reference = {key: digest for key, (_, digest) in runs["main_process"][0].items()}
    assert {key: digest for key, (_, digest) in runs[name][0].items()} == reference
    assert len(set(reference.values())) == len(reference)  # every visit is a fresh augmentation
