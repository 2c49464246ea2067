"""SADATrainer on real CIFAR-10 images with tiny ViT and ResNet models."""

from __future__ import annotations

import math
import os

import datasets
import pytest
import torch
from transformers import Trainer, TrainerCallback

import sada_hf.trainer as trainer_module
from sada_hf import SADAConfig, SADAState, SADATrainer, SADATransform, TransformEpochCallback
from sada_hf.persistence import CONFIG_FILE, STATE_FILE, SUMMARY_FILE

from conftest import tiny_resnet, tiny_vit, training_args

MEAN = STD = (0.5, 0.5, 0.5)


def sada_dataset(dataset, **config):
    """A copy of `dataset` with a SADATransform (window 5 so that 5 epochs show strengths)."""
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(**{"window": 5, **config}))
    return dataset.with_transform(transform)


def sada_logs(trainer):
    return [entry for entry in trainer.state.log_history if "sada/warmup_fraction" in entry]


@pytest.mark.parametrize("make_model", [tiny_vit, tiny_resnet], ids=["vit", "resnet"])
@pytest.mark.parametrize("accumulation", [1, 2])
def test_every_example_is_visited_once_per_epoch(tmp_path, cifar_train, make_model, accumulation):
    # 300 examples at batch 32: the last batch of each epoch holds 12.
    trainer = SADATrainer(
        model=make_model(),
        args=training_args(tmp_path, gradient_accumulation_steps=accumulation),
        train_dataset=sada_dataset(cifar_train),
    )
    trainer.train()
    state = trainer.sada_state
    assert torch.equal(state.visits, torch.full((300,), 5, dtype=torch.int32))
    strengths = state.strengths
    assert not torch.isnan(strengths).any() and not torch.isnan(state.variance).any()
    assert len(torch.unique(strengths)) > 100  # per-example, not one value
    logs = sada_logs(trainer)
    assert [entry["epoch"] for entry in logs] == [1, 2, 3, 4, 5]
    assert [entry["sada/warmup_fraction"] for entry in logs] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert "index" not in trainer.train_dataset[0] or trainer.train_dataset[0]["index"] == 0


class _Snapshots(TrainerCallback):
    """Copies the SADA state after each epoch end and after each evaluation."""

    def __init__(self, trainer):
        self.trainer, self.after_epoch, self.after_eval = trainer, [], []

    def _copy(self):
        state = self.trainer.sada_state
        return {k: v.clone() for k, v in state.store.state_dict().items()} | {"strengths": state.strengths}

    def on_epoch_end(self, args, state, control, **kwargs):
        self.after_epoch.append(self._copy())

    def on_evaluate(self, args, state, control, **kwargs):
        self.after_eval.append(self._copy())


def test_evaluation_never_changes_the_state(tmp_path, cifar_train, cifar_eval):
    train = sada_dataset(cifar_train)
    # Evaluate on the training images too, through the SADA transform (their batches carry an index).
    train_view = sada_dataset(cifar_train.add_column("index", list(range(len(cifar_train)))))
    test_view = cifar_eval.with_transform(SADATransform(size=32, mean=MEAN, std=STD).for_evaluation())
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(tmp_path, num_train_epochs=4, eval_strategy="epoch"),
        train_dataset=train,
        eval_dataset={"train_view": train_view, "test": test_view},
    )
    snapshots = _Snapshots(trainer)
    trainer.add_callback(snapshots)  # after SADA's own callback: sees the state after each epoch end
    trainer.train()
    assert len(snapshots.after_eval) == 2 * len(snapshots.after_epoch) == 8
    for epoch, before in enumerate(snapshots.after_epoch):
        for after in snapshots.after_eval[2 * epoch : 2 * epoch + 2]:
            for name in before:
                torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, equal_nan=True)
    before = snapshots._copy()
    metrics = trainer.evaluate(train_view)
    assert math.isfinite(metrics["eval_loss"])
    for name, tensor in snapshots._copy().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0, equal_nan=True)


def _losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_bookkeeping_does_not_change_training(tmp_path, cifar_train):
    config = SADAConfig(strategy="trivialaugment", warmup_strength=0.5, augmentation_seed=0)  # a fixed strength
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=config)
    indexed = cifar_train.add_column("index", list(range(len(cifar_train))))

    sada = SADATrainer(
        model=tiny_vit(),
        args=training_args(tmp_path / "sada", num_train_epochs=3),
        train_dataset=indexed.with_transform(transform),
    )
    sada.train()
    plain_transform = SADATransform(size=32, mean=MEAN, std=STD, config=config)
    plain = Trainer(
        model=tiny_vit(),
        args=training_args(tmp_path / "plain", num_train_epochs=3, remove_unused_columns=False),
        train_dataset=indexed.with_transform(plain_transform),
        callbacks=[TransformEpochCallback(plain_transform)],
    )
    plain.train()
    assert len(_losses(sada)) == 30
    assert _losses(sada) == _losses(plain)
    for (name, a), b in zip(sada.model.state_dict().items(), plain.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert int(sada.sada_state.visits.min()) == 3  # the bookkeeping did run


def test_without_a_sada_transform_training_is_plain_trainer(tmp_path, cifar_train, monkeypatch):
    warnings = []
    monkeypatch.setattr(trainer_module.logger, "warning", lambda message, *a, **k: warnings.append(message))
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(warmup_strength=0.5))

    def plain_transform(batch):  # a user's own transform: not a SADATransform
        return transform(batch)

    indexed = cifar_train.add_column("index", list(range(len(cifar_train))))
    args = dict(num_train_epochs=2, remove_unused_columns=False)
    sada = SADATrainer(
        model=tiny_vit(),
        args=training_args(tmp_path / "a", **args),
        train_dataset=indexed.with_transform(plain_transform),
    )
    assert sada.sada_state is None
    assert len(warnings) == 1 and "SADA is inactive" in warnings[0]
    sada.train()
    plain = Trainer(
        model=tiny_vit(),
        args=training_args(tmp_path / "b", **args),
        train_dataset=indexed.with_transform(plain_transform),
    )
    plain.train()
    assert _losses(sada) == _losses(plain) and len(_losses(sada)) == 20
    assert not sada_logs(sada) and not os.path.exists(tmp_path / "a" / STATE_FILE)


def test_state_is_written_with_every_checkpoint_and_on_save_model(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_resnet(),
        args=training_args(tmp_path, num_train_epochs=3, save_strategy="epoch"),
        train_dataset=sada_dataset(cifar_train),
    )
    trainer.train()
    trainer.save_model()
    checkpoints = sorted(d for d in os.listdir(tmp_path) if d.startswith("checkpoint-"))
    assert checkpoints == ["checkpoint-10", "checkpoint-20", "checkpoint-30"]
    for directory in [tmp_path / c for c in checkpoints]:
        assert (directory / STATE_FILE).is_file() and (directory / CONFIG_FILE).is_file()
        assert not (directory / SUMMARY_FILE).exists()
    # The saved model (what a push uploads) carries the per-example summary, not the N x K state.
    assert not (tmp_path / STATE_FILE).exists() and (tmp_path / CONFIG_FILE).is_file()
    summary = datasets.load_dataset("parquet", data_files=str(tmp_path / SUMMARY_FILE))["train"]
    assert summary["index"] == list(range(300))
    assert summary["visits"] == [3] * 300
    torch.testing.assert_close(torch.tensor(summary["strength"]), trainer.sada_state.strengths, equal_nan=True)
    torch.testing.assert_close(torch.tensor(summary["variance"]), trainer.sada_state.variance, equal_nan=True)
    restored = SADAState(trainer.sada_state.labels, 10, trainer.sada_state.config)
    restored.load(tmp_path / "checkpoint-30")
    for name, tensor in trainer.sada_state.store.state_dict().items():
        torch.testing.assert_close(restored.store.state_dict()[name], tensor, rtol=0, atol=0, equal_nan=True)
    first = SADAState(trainer.sada_state.labels, 10, trainer.sada_state.config)
    first.load(tmp_path / "checkpoint-10")
    assert first.epochs_completed == 1 and int(first.visits.max()) == 1


def test_transform_restricted_to_some_columns_still_gets_the_index(tmp_path, cifar_train):
    dataset = cifar_train.add_column("extra", [0] * len(cifar_train))
    dataset.set_transform(SADATransform(size=32, mean=MEAN, std=STD), columns=["image", "label"])
    trainer = SADATrainer(model=tiny_vit(), args=training_args(tmp_path, num_train_epochs=1), train_dataset=dataset)
    assert trainer.train_dataset.format["columns"] == ["image", "label", "index"]
    trainer.train()
    assert torch.equal(trainer.sada_state.visits, torch.ones(300, dtype=torch.int32))


def test_bf16_autocast_logits_are_stored_as_float32(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(tmp_path, num_train_epochs=3, bf16=True),
        train_dataset=sada_dataset(cifar_train),
    )
    trainer.train()
    store = trainer.sada_state.store
    assert torch.equal(store.visits, torch.full((300,), 3, dtype=torch.int32))
    assert store.log_probs.dtype == torch.float32 and torch.isfinite(store.log_probs).all()
    assert store.nonfinite_skipped == 0 and not torch.isnan(trainer.sada_state.variance).any()
