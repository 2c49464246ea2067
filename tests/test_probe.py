"""influence='probe': a clean-view forward that measures the example, leaves training untouched, publishes
within epochs, resumes exactly and streams per-example dynamics."""

from __future__ import annotations

import hashlib
import math

import datasets
import numpy as np
import pytest
import torch
from transformers import Trainer

from sada_hf import SADAConfig, SADATrainer, SADATransform, TransformEpochCallback, data_map
from sada_hf.dynamics import DYNAMICS_DIR

from conftest import tiny_resnet, tiny_vit, training_args
from reporting_transform import ReportingTransform

MEAN = STD = (0.5, 0.5, 0.5)
FIXED = dict(strategy="trivialaugment", warmup_strength=0.5, augmentation_seed=0)  # strengths never change


def probe_trainer(output_dir, dataset, model=None, config=None, **args) -> SADATrainer:
    config = config or SADAConfig(influence="probe", window=2, normalization="rank")
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=config)
    return SADATrainer(
        model=model or tiny_resnet(),
        args=training_args(output_dir, **{"num_train_epochs": 3, **args}),
        train_dataset=dataset.with_transform(transform),
    )


def _losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.parametrize("make_model", [tiny_resnet, tiny_vit], ids=["resnet-batchnorm", "vit"])
def test_probes_leave_training_bit_identical(tmp_path, cifar_train, make_model):
    # A fixed strength, so only the probes differ: four per epoch, each a forward in eval mode.
    probed = probe_trainer(
        tmp_path / "probe", cifar_train, make_model(), SADAConfig(influence="probe", probe_every=0.25, **FIXED)
    )
    probed.train()
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(**FIXED))
    plain = Trainer(
        model=make_model(),
        args=training_args(tmp_path / "plain", num_train_epochs=3, remove_unused_columns=False),
        train_dataset=cifar_train.add_column("index", list(range(300))).with_transform(transform),
        callbacks=[TransformEpochCallback(transform)],
    )
    plain.train()
    assert probed.sada_state.probes_completed == 12 and len(_losses(probed)) == 30
    assert _losses(probed) == _losses(plain)
    for (name, a), b in zip(probed.model.state_dict().items(), plain.model.state_dict().values()):
        assert torch.equal(a, b), name  # BatchNorm running statistics included
    assert probed.model.training


def test_probe_logits_are_the_clean_view_of_the_current_model(tmp_path, cifar_train):
    trainer = probe_trainer(tmp_path, cifar_train, num_train_epochs=2)
    trainer.train()
    assert torch.equal(trainer.sada_state.visits, torch.full((300,), 2, dtype=torch.int32))
    # The last probe ran after the last step: its log-probabilities are the final model's on the clean view.
    evaluation = cifar_train.with_transform(SADATransform(size=32, mean=MEAN, std=STD).for_evaluation())
    logits = torch.from_numpy(trainer.predict(evaluation).predictions).double()
    torch.testing.assert_close(
        trainer.sada_state.store.log_probs.double(), torch.log_softmax(logits, 1), rtol=0, atol=1e-5
    )


def test_quarter_epoch_probes_give_strengths_within_the_first_epoch(tmp_path, cifar_train):
    trainer = probe_trainer(
        tmp_path, cifar_train, config=SADAConfig(influence="probe", probe_every=0.25, normalization="rank")
    )
    trainer.train()
    history = trainer.sada_state.history
    # 10 steps per epoch: probes after steps 3, 5, 8 and at the epoch end; V exists from the third probe.
    assert [h.epoch for h in history[:4]] == [0.3, 0.5, 0.8, 1.0]
    assert [h.warmup_fraction for h in history[:4]] == [1.0, 1.0, 0.0, 0.0]
    assert len(history) == 12 and trainer.sada_state.probes_completed == 12
    logged = [e["step"] for e in trainer.state.log_history if "sada/warmup_fraction" in e]
    assert logged[:4] == [3, 5, 8, 10]


class _RecordingTrainer(SADATrainer):
    """Records, per visit, the strength the transform used and a digest of the pixels it produced."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        strengths, epochs = inputs.pop("seen_strength"), inputs.pop("seen_epoch")
        for epoch, index, strength, pixels in zip(
            epochs.tolist(), inputs["index"].tolist(), strengths.tolist(), inputs["pixel_values"]
        ):
            self.seen[(epoch, index)] = (strength, hashlib.sha1(pixels.numpy().tobytes()).hexdigest())
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


@pytest.fixture(scope="module")
def mid_epoch_runs(tmp_path_factory, cifar_train):
    """The same run with eight probes per epoch, with 0 workers and with 2 persistent workers (and 2
    batches each of prefetch, far past each probe)."""
    dataset = cifar_train  # 10 steps of 32 per epoch: probes after steps 2, 3, 4, 5, 7, 8, 9 and at 10
    runs = {}
    for name, workers in {
        "main": dict(),
        "persistent": dict(dataloader_num_workers=2, dataloader_persistent_workers=True),
    }.items():
        config = SADAConfig(influence="probe", probe_every=0.125, window=2, normalization="rank", augmentation_seed=1)
        transform = ReportingTransform(size=32, mean=MEAN, std=STD, config=config)
        trainer = _RecordingTrainer(
            model=tiny_vit(),
            args=training_args(
                tmp_path_factory.mktemp(name), num_train_epochs=2, remove_unused_columns=False, **workers
            ),
            train_dataset=dataset.with_transform(transform),
        )
        trainer.seen = {}
        trainer.train()
        runs[name] = trainer
    return runs


def test_persistent_workers_see_mid_epoch_strengths_exactly_as_the_main_process(mid_epoch_runs):
    main, persistent = mid_epoch_runs["main"].seen, mid_epoch_runs["persistent"].seen
    assert len(main) == len(persistent) == 2 * 300
    in_first_epoch = [strength for (epoch, _), (strength, _) in main.items() if epoch == 0]
    # Published by the third probe (after step 4), used from batch 5 on: batches 5-9 (4 x 32 + 12) of epoch 0.
    assert sum(not math.isnan(s) for s in in_first_epoch) == 4 * 32 + 12
    for key, (strength, digest) in main.items():
        other_strength, other_digest = persistent[key]
        assert digest == other_digest, key
        assert (math.isnan(strength) and math.isnan(other_strength)) or strength == other_strength, key


@pytest.mark.parametrize("step", [13, 15, 20], ids=["between-probes", "at-a-probe", "epoch-end"])
def test_resume_between_probes_is_exact(tmp_path, cifar_train, step):
    config = dict(influence="probe", probe_every=0.5, window=2, normalization="rank")
    args = dict(num_train_epochs=3, save_strategy="steps", save_steps=1, logging_steps=5)
    full = probe_trainer(tmp_path / "full", cifar_train, tiny_resnet(), SADAConfig(**config), **args)
    full.train()
    resumed = probe_trainer(tmp_path / "resumed", cifar_train, tiny_resnet(seed=5), SADAConfig(**config), **args)
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / f"checkpoint-{step}"))
    a, b = full.sada_state, resumed.sada_state
    for name, tensor in a.store.state_dict().items():
        torch.testing.assert_close(b.store.state_dict()[name], tensor, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(b.strengths, a.strengths, rtol=0, atol=0, equal_nan=True)
    assert b.history == a.history and b.probes_completed == a.probes_completed == 6
    for (name, x), y in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(x, y), name


def test_dynamics_load_with_datasets_and_make_a_data_map(tmp_path, cifar_train):
    trainer = probe_trainer(tmp_path, cifar_train, num_train_epochs=3)
    trainer.train()
    files = sorted((tmp_path / DYNAMICS_DIR).glob("*.parquet"))
    assert len(files) == 3
    dynamics = datasets.load_dataset("parquet", data_files=str(tmp_path / DYNAMICS_DIR / "*.parquet"))["train"]
    assert len(dynamics) == 900 and sorted(set(dynamics["probe"])) == [1, 2, 3]
    last = dynamics.filter(lambda row: row["probe"] == 3).sort("index")
    assert last["index"] == list(range(300))
    labels = np.asarray(cifar_train["label"])
    assert last["label"] == labels.tolist()
    # Recompute the last probe's columns in float64 from the stored log-probabilities (the final model's).
    log_p = trainer.sada_state.store.log_probs.double()
    np.testing.assert_allclose(last["gold_prob"], log_p.exp()[torch.arange(300), labels].numpy(), atol=1e-6)
    assert last["predicted"] == log_p.argmax(1).tolist()
    assert last["correct"] == (log_p.argmax(1).numpy() == labels).tolist()
    np.testing.assert_allclose(last["variance"], trainer.sada_state.variance.numpy(), rtol=1e-6)
    np.testing.assert_allclose(last["strength"], trainer.sada_state.strengths.numpy(), rtol=1e-6)
    first = dynamics.filter(lambda row: row["probe"] == 1)
    assert all(math.isnan(v) for v in first["influence"])  # no KL before the second probe

    stats = data_map(tmp_path)
    table = dynamics.to_pandas()
    expected = table.groupby("index")["gold_prob"].agg(["mean", lambda x: x.std(ddof=0)])
    np.testing.assert_allclose(stats["probe_confidence"], expected["mean"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(stats["probe_variability"], expected.iloc[:, 1].to_numpy(), atol=1e-6)
    plots = trainer.save_sada_plots()
    assert "sada_data_map.png" in plots and (tmp_path / "sada_data_map.png").is_file()


def test_data_map_of_a_folder_without_a_run_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="No sada_examples.parquet in .*SADATransform"):
        data_map(tmp_path)
