"""Bad input: a clear error before the first step, or handled; odd images train; non-finite logits skip."""

from __future__ import annotations

import math

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from sada_hf import SADAConfig, SADATrainer, SADATransform

from conftest import tiny_vit, training_args


def with_sada(dataset, **kwargs):
    return dataset.with_transform(SADATransform(size=32, config=SADAConfig(window=2), **kwargs))


def make_trainer(tmp_path, dataset, model=None, **args):
    return SADATrainer(model=model or tiny_vit(), args=training_args(tmp_path, **args), train_dataset=dataset)


def test_label_outside_num_labels(tmp_path, cifar_train):
    labels = np.array(cifar_train["label"])
    labels[17] = 12
    dataset = (
        cifar_train.cast_column("label", datasets.Value("int64")).remove_columns("label").add_column("label", labels)
    )
    with pytest.raises(ValueError, match=r"Label 12 at row 17 is outside 0..9 .*num_labels=10"):
        make_trainer(tmp_path, with_sada(dataset))


@pytest.mark.parametrize("missing, role", [("image", "image"), ("label", "label")])
def test_missing_image_or_label_column_lists_the_columns(tmp_path, cifar_train, missing, role):
    dataset = cifar_train.rename_column(missing, "something_else")
    with pytest.raises(ValueError, match=rf"no {role} column '{missing}'; its columns are \[.*'something_else'"):
        make_trainer(tmp_path, with_sada(dataset))


def test_other_column_names_work_when_named(tmp_path, cifar_train):
    dataset = cifar_train.rename_columns({"image": "img", "label": "fine_label"})
    trainer = make_trainer(
        tmp_path, with_sada(dataset, image_column="img", label_column="fine_label"), num_train_epochs=1
    )
    trainer.train()
    assert int(trainer.sada_state.visits.min()) == 1


@pytest.mark.parametrize("max_steps", [-1, 10])
def test_iterable_datasets_are_refused_when_sada_is_asked_for(tmp_path, cifar_train, max_steps):
    with pytest.raises(TypeError, match="streaming=True"):
        SADATrainer(
            model=tiny_vit(),
            args=training_args(tmp_path, max_steps=max_steps),
            train_dataset=cifar_train.to_iterable_dataset(),
            sada_config=SADAConfig(),
        )


@pytest.mark.parametrize("max_steps", [-1, 10])
def test_a_sada_transform_mapped_on_a_stream_is_refused(tmp_path, cifar_train, max_steps):
    # Without the refusal the stream trains with SADA inactive: no trainer publishes the strengths it reads.
    stream = (
        cifar_train.add_column("index", range(len(cifar_train)))
        .to_iterable_dataset()
        .map(SADATransform(size=32), batched=True, remove_columns=["image"])
        .shuffle(seed=0, buffer_size=16)
    )
    with pytest.raises(TypeError, match=r"^SADA needs a map-style `datasets.Dataset`.*streaming=True[^\n]*$"):
        make_trainer(tmp_path, stream, max_steps=max_steps)


def test_an_iterable_dataset_without_sada_trains_as_trainer_does(tmp_path, cifar_train):
    from transformers import Trainer

    from sada_hf import EvalTransform

    def stream():
        return cifar_train.to_iterable_dataset().map(EvalTransform(size=32), batched=True, remove_columns=["image"])

    losses = []
    for trainer_class in (Trainer, SADATrainer):
        trainer = trainer_class(model=tiny_vit(), args=training_args(tmp_path, max_steps=3), train_dataset=stream())
        trainer.train()
        losses.append([e["loss"] for e in trainer.state.log_history if "loss" in e])
    assert getattr(trainer, "sada_state", None) is None and losses[0] == losses[1] and len(losses[0]) == 3


def test_empty_dataset_is_refused(tmp_path, cifar_train):
    with pytest.raises(ValueError, match="empty"):
        make_trainer(tmp_path, with_sada(cifar_train.select([])))


def test_index_column_that_is_not_the_row_order_is_refused(tmp_path, cifar_train):
    stale = cifar_train.add_column("index", list(range(300))).shuffle(seed=0)  # index added before a shuffle
    with pytest.raises(ValueError, match=r"must hold 0..299 in order.*remove_columns\('index'\)"):
        make_trainer(tmp_path, with_sada(stale))


def test_non_integer_labels_are_refused(tmp_path, cifar_train):
    dataset = cifar_train.cast_column("label", datasets.Value("float32"))
    with pytest.raises(ValueError, match="must be integers"):
        make_trainer(tmp_path, with_sada(dataset))


def test_regression_head_is_refused(tmp_path, cifar_train):
    with pytest.raises(ValueError, match="num_labels >= 2"):
        make_trainer(tmp_path, with_sada(cifar_train), model=tiny_vit(num_labels=1))


def test_callers_dataset_is_not_modified(tmp_path, cifar_train):
    dataset = with_sada(cifar_train)
    fingerprint, columns = dataset._fingerprint, dataset.column_names
    make_trainer(tmp_path, dataset)
    assert dataset._fingerprint == fingerprint and dataset.column_names == columns == ["image", "label", "row"]


def _odd_images():
    rng = np.random.default_rng(0)

    def rgb(width, height):
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))

    return [
        rgb(32, 32).convert("L"),
        rgb(40, 30).convert("LA"),
        rgb(30, 40).convert("RGBA"),
        rgb(32, 32).convert("P"),
        rgb(64, 48).convert("CMYK"),
        Image.fromarray(rng.integers(0, 65536, (20, 20), dtype=np.uint16)),  # I;16
        rgb(8, 8),
        rgb(1, 1),
        rgb(100, 12),
        rgb(32, 32),
    ]


def test_odd_modes_and_sizes_train(tmp_path):
    images = _odd_images() * 6
    assert {im.mode for im in images} >= {"L", "LA", "RGBA", "P", "CMYK", "I;16"}
    dataset = datasets.Dataset.from_dict(
        {"image": images, "label": [i % 10 for i in range(len(images))]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)}),
    )
    trainer = make_trainer(tmp_path, with_sada(dataset), num_train_epochs=3, per_device_train_batch_size=16)
    trainer.train()
    assert torch.equal(trainer.sada_state.visits, torch.full((60,), 3, dtype=torch.int32))


class NaNLogitsViTForImageClassification(type(tiny_vit())):  # the name picks the loss type
    """Returns NaN logits for the first row of every training batch, after the loss is computed."""

    def forward(self, pixel_values=None, labels=None, **kwargs):
        outputs = super().forward(pixel_values=pixel_values, labels=labels, **kwargs)
        if self.training:
            outputs.logits = outputs.logits.detach().clone()
            outputs.logits[0] = math.nan
        return outputs


def test_non_finite_logits_are_skipped_counted_and_training_goes_on(tmp_path, cifar_train):
    model = NaNLogitsViTForImageClassification(tiny_vit().config)
    trainer = make_trainer(tmp_path, with_sada(cifar_train), model=model, num_train_epochs=3)
    trainer.train()
    batches = math.ceil(300 / 32)
    skipped = [e["sada/nonfinite_skipped"] for e in trainer.state.log_history if "sada/nonfinite_skipped" in e]
    assert skipped == [batches] * 3
    assert trainer.sada_state.store.nonfinite_skipped == 3 * batches
    assert int(trainer.sada_state.visits.sum()) == 3 * (300 - batches)
    assert torch.isfinite(trainer.sada_state.store.log_probs).all()
    assert all(math.isfinite(e["loss"]) for e in trainer.state.log_history if "loss" in e)
