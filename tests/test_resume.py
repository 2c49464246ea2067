"""Interrupted and resumed runs end exactly where uninterrupted runs end: SADA state (influence, margins,
strengths) and weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import Trainer, ViTForImageClassification

import sada_hf.trainer as trainer_module
from sada_hf import SADAConfig, SADATrainer, SADATransform
from sada_hf.checkpoints import RECORD_FILE
from sada_hf.persistence import STATE_FILE

from conftest import tiny_resnet, tiny_vit, training_args

MODELS = {"vit": tiny_vit, "resnet": tiny_resnet}
EPOCHS = 4  # 300 examples at batch 32: 10 steps per epoch, 40 in all


def make_trainer(output_dir, dataset, model, **args) -> SADATrainer:
    transform = SADATransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, config=SADAConfig(window=2))
    defaults = dict(num_train_epochs=EPOCHS, logging_steps=5, save_strategy="steps", save_steps=5)
    return SADATrainer(
        model=model,
        args=training_args(output_dir, **{**defaults, **args}),
        train_dataset=dataset.with_transform(transform),
    )


def snapshot(trainer: SADATrainer) -> dict:
    state = trainer.sada_state
    return {
        "store": {k: v.clone() for k, v in state.store.state_dict().items()},
        "margins": {k: v.clone() for k, v in state.margins.state_dict().items()},
        "dynamics": state.training_dynamics,
        "strengths": state.strengths,
        "history": state.history,
        "weights": {k: v.clone() for k, v in trainer.model.state_dict().items()},
        "losses": [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e],
    }


def assert_identical(resumed: dict, full: dict) -> None:
    for store in ("store", "margins"):
        for name, tensor in full[store].items():
            torch.testing.assert_close(resumed[store][name], tensor, rtol=0, atol=0, equal_nan=True)
    for name, values in full["dynamics"].items():
        np.testing.assert_array_equal(resumed["dynamics"][name], values, err_msg=name)
    torch.testing.assert_close(resumed["strengths"], full["strengths"], rtol=0, atol=0, equal_nan=True)
    assert resumed["history"] == full["history"]
    for name, tensor in full["weights"].items():
        assert torch.equal(resumed["weights"][name], tensor), name
    assert resumed["losses"] == full["losses"]  # the checkpoint's log history, then the resumed steps


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory, cifar_train):
    """Per model, an uninterrupted run saving every 5 steps, and one saving at epoch ends."""
    runs = {}
    for name, make_model in MODELS.items():
        steps_dir = tmp_path_factory.mktemp(f"{name}-steps")
        trainer = make_trainer(steps_dir, cifar_train, make_model())
        trainer.train()
        epochs_dir = tmp_path_factory.mktemp(f"{name}-epochs")
        make_trainer(epochs_dir, cifar_train, make_model(), save_strategy="epoch").train()
        runs[name] = (snapshot(trainer), steps_dir, epochs_dir)
    return runs


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize(
    "where, step",
    [("mid_epoch", 15), ("last_step_before_epoch_end", 20), ("after_epoch_end", 20)],
)
def test_resumed_run_matches_the_uninterrupted_run(tmp_path, cifar_train, full_runs, model_name, where, step):
    full, steps_dir, epochs_dir = full_runs[model_name]
    source = (epochs_dir if where == "after_epoch_end" else steps_dir) / f"checkpoint-{step}"
    # The resumed model starts from other weights: only a correct restore can match.
    trainer = make_trainer(tmp_path, cifar_train, MODELS[model_name](seed=123))
    trainer.train(resume_from_checkpoint=str(source))
    assert_identical(snapshot(trainer), full)


def test_resume_from_true_takes_the_last_checkpoint(tmp_path, cifar_train, full_runs):
    full, steps_dir, _ = full_runs["vit"]
    shutil.copytree(steps_dir / "checkpoint-10", tmp_path / "checkpoint-10")
    shutil.copytree(steps_dir / "checkpoint-25", tmp_path / "checkpoint-25")
    trainer = make_trainer(tmp_path, cifar_train, tiny_vit(seed=123))
    trainer.train(resume_from_checkpoint=True)
    assert_identical(snapshot(trainer), full)


def _restored_weights(trainer_cls, checkpoint, output_dir, dataset, **kwargs):
    """Resume at the checkpoint's own step: no step is trained, the weights are what was loaded."""
    step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    trainer = trainer_cls(
        model=tiny_vit(seed=123),
        args=training_args(output_dir, max_steps=step, remove_unused_columns=False),
        train_dataset=dataset,
        **kwargs,
    )
    trainer.train(resume_from_checkpoint=str(checkpoint))
    return trainer.model.state_dict()


def test_upstream_trainer_still_loses_vit_weights_on_resume(tmp_path, cifar_train, full_runs):
    """transformers#43701, the reason for `sada_hf.compat`: when this test fails, upstream has fixed
    the bug and `reload_renamed_weights` can go."""
    _, steps_dir, _ = full_runs["vit"]
    checkpoint = steps_dir / "checkpoint-10"
    saved = ViTForImageClassification.from_pretrained(checkpoint).state_dict()
    transform = SADATransform(size=32, config=SADAConfig(window=2))
    dataset = cifar_train.add_column("index", list(range(300))).with_transform(transform)
    plain = _restored_weights(Trainer, checkpoint, tmp_path / "plain", dataset)
    sada = _restored_weights(SADATrainer, checkpoint, tmp_path / "sada", dataset)
    encoder = [name for name in saved if ".layers." in name]
    assert encoder and all(torch.equal(sada[name], saved[name]) for name in saved)
    assert not all(torch.equal(plain[name], saved[name]) for name in encoder)


def test_checkpoint_without_sada_state_resumes_fresh_with_a_warning(tmp_path, cifar_train, full_runs, monkeypatch):
    _, steps_dir, _ = full_runs["resnet"]
    checkpoint = tmp_path / "checkpoint-20"
    shutil.copytree(steps_dir / "checkpoint-20", checkpoint)
    (checkpoint / STATE_FILE).unlink()  # as a plain Trainer writes it: no SADA state, no checkpoint record
    (checkpoint / RECORD_FILE).unlink()
    warnings = []
    monkeypatch.setattr(trainer_module.logger, "warning", lambda message, *a, **k: warnings.append(message))
    trainer = make_trainer(tmp_path / "out", cifar_train, tiny_resnet(), num_train_epochs=3)
    trainer.train(resume_from_checkpoint=str(checkpoint))
    assert any("No SADA state" in w and "epoch 2" in w for w in warnings)
    assert torch.equal(trainer.sada_state.visits, torch.ones(300, dtype=torch.int32))  # one fresh epoch
    assert [h.epoch for h in trainer.sada_state.history] == [3]


@pytest.mark.parametrize("damage", ["truncate", "other_dataset"])
def test_bad_state_is_refused_before_training_or_writing(tmp_path, cifar_train, full_runs, damage):
    _, steps_dir, _ = full_runs["resnet"]
    checkpoint = tmp_path / "checkpoint-20"
    shutil.copytree(steps_dir / "checkpoint-20", checkpoint)
    dataset = cifar_train
    if damage == "truncate":  # named by path, its closed record lets it through (with a warning) to the state
        path = checkpoint / STATE_FILE
        path.write_bytes(path.read_bytes()[:1000])
        message = "truncated or corrupt"
    else:
        dataset = cifar_train.select(range(200))
        message = "written for 300 training examples, but this run has 200"
    files_before = {p.name: p.read_bytes() for p in checkpoint.iterdir() if p.is_file()}
    trainer = make_trainer(tmp_path / "out", dataset, tiny_resnet())
    with pytest.raises(ValueError, match=message):
        trainer.train(resume_from_checkpoint=str(checkpoint))
    assert trainer.state.global_step == 0
    assert {p.name: p.read_bytes() for p in checkpoint.iterdir() if p.is_file()} == files_before
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
