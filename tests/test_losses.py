"""Logit adjustment (sada_hf/losses.py and `SADATrainer(logit_adjustment=...)`) against hand-computed
float64 losses: training sees logits + tau * log(prior), evaluation and the SADA statistics the plain logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sada_hf import SADAConfig, SADATrainer, SADATransform
from sada_hf.losses import class_log_prior, logit_adjusted_cross_entropy

from conftest import tiny_resnet, training_args


def reference_loss(logits: np.ndarray, labels: np.ndarray, log_prior: np.ndarray, tau: float) -> float:
    """Mean cross-entropy of logits + tau * log_prior, in float64, by hand."""
    adjusted = logits.astype(np.float64) + tau * log_prior.astype(np.float64)
    shifted = adjusted - adjusted.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(labels)), labels].mean())


def test_class_log_prior_is_the_log_of_each_class_share():
    prior = class_log_prior(torch.tensor([0, 0, 0, 1, 2, 2, 2, 2]), num_labels=4)
    expected = [math.log(3 / 8), math.log(1 / 8), math.log(4 / 8), -math.inf]
    np.testing.assert_allclose(prior.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("tau", [0.0, 1.0, 2.5])
def test_adjusted_cross_entropy_matches_float64(tau):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5, generator=generator) * 3
    labels = torch.randint(0, 5, (12,), generator=generator)
    log_prior = class_log_prior(torch.tensor([0] * 50 + [1] * 20 + [2] * 10 + [3] * 5 + [4] * 2), 5)
    expected = reference_loss(logits.numpy(), labels.numpy(), log_prior.numpy(), tau)
    assert logit_adjusted_cross_entropy(logits, labels, log_prior, tau).item() == pytest.approx(expected, rel=1e-6)
    # Over a gradient-accumulation cycle of 30 examples, this batch contributes its sum / 30.
    summed = logit_adjusted_cross_entropy(logits, labels, log_prior, tau, num_items_in_batch=30)
    assert summed.item() == pytest.approx(expected * 12 / 30, rel=1e-6)


def test_an_ignored_label_does_not_count():
    logits, log_prior = torch.zeros(3, 2), torch.log(torch.tensor([0.5, 0.5]))
    loss = logit_adjusted_cross_entropy(logits, torch.tensor([0, -100, 1]), log_prior, 1.0, num_items_in_batch=2)
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)


def long_tailed(dataset):
    """Class c keeps 30 >> c images: a long tail from 30 down to 1."""
    labels = np.asarray(dataset["label"])
    keep = [i for c in range(10) for i in np.flatnonzero(labels == c)[: max(30 >> c, 1)]]
    return dataset.select(keep)


def make_trainer(tmp_path, dataset, **kwargs) -> SADATrainer:
    config = SADAConfig(strategy="none")
    transform = SADATransform(
        size=32, mean=(0.5,) * 3, std=(0.5,) * 3, crop="none", horizontal_flip=False, config=config
    )
    return SADATrainer(
        model=tiny_resnet(),
        args=training_args(tmp_path, per_device_train_batch_size=16),
        train_dataset=dataset.with_transform(transform),
        **kwargs,
    )


def test_trainer_trains_on_adjusted_logits_and_evaluates_plain_ones(tmp_path, cifar_train):
    dataset = long_tailed(cifar_train)
    trainer = make_trainer(tmp_path, dataset, logit_adjustment=1.0)
    counts = np.bincount(np.asarray(dataset["label"]), minlength=10)
    np.testing.assert_allclose(trainer._class_log_prior.numpy(), np.log(counts / counts.sum()), rtol=1e-6)
    batch = next(iter(trainer.get_train_dataloader()))
    inputs = {name: value for name, value in batch.items()}
    model = trainer.model.train()
    with torch.no_grad():
        logits = model(pixel_values=inputs["pixel_values"]).logits.numpy()  # train mode: BatchNorm batch stats
        loss = trainer.compute_loss(model, dict(inputs)).item()
        labels = inputs["labels"].numpy()
        assert loss == pytest.approx(reference_loss(logits, labels, np.log(counts / counts.sum()), 1.0), rel=1e-5)
        model.eval()
        plain_logits = model(pixel_values=inputs["pixel_values"]).logits.numpy()
        eval_loss = trainer.compute_loss(model, dict(inputs)).item()
    assert eval_loss == pytest.approx(reference_loss(plain_logits, labels, np.zeros(10), 0.0), rel=1e-5)


def test_with_tau_zero_training_is_the_default_loss(tmp_path, cifar_train):
    """The loss path taken with tau = 0 inside the function equals the model's own loss: same weights as
    Trainer's default after training (the only difference the adjustment makes is the tau term)."""
    dataset = long_tailed(cifar_train)
    default = make_trainer(tmp_path / "a", dataset)
    default.train()
    adjusted = make_trainer(tmp_path / "b", dataset, logit_adjustment=1.0)
    adjusted.logit_adjustment = 0.0  # the same function, tau 0: must be the model's own cross-entropy
    adjusted.train()
    for (name, a), b in zip(default.model.state_dict().items(), adjusted.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(logit_adjustment=-1.0), "must be a finite number >= 0, got -1.0"),
        (dict(logit_adjustment=1.0, args_overrides=dict(label_smoothing_factor=0.1)), "cannot be combined"),
    ],
)
def test_bad_logit_adjustment_is_refused(tmp_path, cifar_train, kwargs, message):
    overrides = kwargs.pop("args_overrides", {})
    transform = SADATransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.raises(ValueError, match=message):
        SADATrainer(
            model=tiny_resnet(),
            args=training_args(tmp_path, **overrides),
            train_dataset=cifar_train.with_transform(transform),
            **kwargs,
        )


def test_logit_adjustment_without_a_sada_transform_is_refused(tmp_path, cifar_train):
    with pytest.raises(ValueError, match="strategy 'none' to train without augmentation"):
        SADATrainer(model=tiny_resnet(), args=training_args(tmp_path), train_dataset=cifar_train, logit_adjustment=1.0)
