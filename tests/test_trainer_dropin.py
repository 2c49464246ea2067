"""What a `Trainer` user does (Hugging Face's own examples) keeps working after the swap, or fails
loudly at the first step: collators, logging strategies, tuple outputs, callbacks that end epochs,
imagefolder datasets, shuffled datasets at scale."""

from __future__ import annotations

import io
import os

import datasets
import numpy as np
import pytest
import torch
from transformers import DefaultDataCollator, Trainer, TrainerCallback

from sada_hf import SADAConfig, SADATrainer, SADATransform, TransformEpochCallback
from sada_hf.training_data import add_index_column

from conftest import tiny_resnet, tiny_vit, training_args

MEAN = STD = (0.5, 0.5, 0.5)


def sada(dataset, **config):
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(**{"window": 2, **config}))
    return dataset.with_transform(transform)


def hf_example_collate_fn(examples):
    """The collate_fn of transformers' examples/pytorch/image-classification/run_image_classification.py."""
    pixel_values = torch.stack([example["pixel_values"] for example in examples])
    labels = torch.tensor([example["label"] for example in examples])
    return {"pixel_values": pixel_values, "labels": labels}


def test_the_hf_example_collate_fn_records_every_example(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(tmp_path, num_train_epochs=3, remove_unused_columns=False),
        train_dataset=sada(cifar_train),
        data_collator=hf_example_collate_fn,
    )
    trainer.train()
    assert torch.equal(trainer.sada_state.visits, torch.full((300,), 3, dtype=torch.int32))
    assert not torch.isnan(trainer.sada_state.strengths).any()


class _DropIndex:
    """A user's transform around SADATransform that keeps only what the model takes."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, batch):
        output = self.transform(batch)
        return {"pixel_values": output["pixel_values"], "labels": output["labels"]}


def test_a_batch_without_indices_fails_at_the_first_step(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(tmp_path, remove_unused_columns=False),
        train_dataset=sada(cifar_train),
    )
    # Replace the bound transform by one that drops the index (as a hand-written transform would).
    bound = trainer.train_dataset.format["format_kwargs"]["transform"]
    trainer.train_dataset = trainer.train_dataset.with_transform(_DropIndex(bound))
    with pytest.raises(ValueError, match=r"without the 'index' column.*data collator \(default_data_collator\)"):
        trainer.train()
    assert trainer.state.global_step == 0


@pytest.mark.parametrize("influence", ["train_step", "probe"])
def test_epoch_logging_keeps_the_training_loss(tmp_path, cifar_train, influence):
    args = dict(num_train_epochs=4, logging_strategy="epoch", remove_unused_columns=False)
    trainer = SADATrainer(
        model=tiny_resnet(),
        args=training_args(tmp_path / "sada", **args),
        train_dataset=sada(cifar_train, influence=influence),
    )
    trainer.train()
    transform = SADATransform(size=32, mean=MEAN, std=STD)
    plain = Trainer(
        model=tiny_resnet(),
        args=training_args(tmp_path / "plain", **args),
        train_dataset=cifar_train.add_column("index", list(range(300))).with_transform(transform),
    )
    plain.train()
    losses = [(e["step"], e["epoch"]) for e in trainer.state.log_history if "loss" in e]
    assert losses == [(e["step"], e["epoch"]) for e in plain.state.log_history if "loss" in e] and len(losses) == 4
    assert len([e for e in trainer.state.log_history if "sada/warmup_fraction" in e]) == 4


def test_step_logging_keeps_every_loss_entry_with_mid_epoch_probes(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_resnet(),
        args=training_args(tmp_path, num_train_epochs=2, logging_steps=5),
        train_dataset=sada(cifar_train, influence="probe", probe_every=0.5),  # probes after steps 5 and 10
    )
    trainer.train()
    assert [e["step"] for e in trainer.state.log_history if "loss" in e] == [5, 10, 15, 20]


def test_tuple_outputs_with_label_smoothing_record_the_logits(tmp_path, cifar_train):
    states = {}
    for return_dict in (True, False):  # (ViT's own forward fails with return_dict=False in transformers 5.24)
        model = tiny_resnet()
        model.config.return_dict = return_dict
        trainer = SADATrainer(
            model=model,
            args=training_args(tmp_path / str(return_dict), num_train_epochs=2, label_smoothing_factor=0.1),
            train_dataset=sada(cifar_train),
        )
        trainer.train()
        states[return_dict] = trainer.sada_state.store.state_dict()
    assert int(states[False]["visits"].min()) == 2
    for name, tensor in states[True].items():
        torch.testing.assert_close(states[False][name], tensor, rtol=0, atol=0, equal_nan=True)


def test_tuple_outputs_with_compute_loss_func(tmp_path, cifar_train):
    def loss_func(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return torch.nn.functional.cross_entropy(logits, labels)

    model = tiny_resnet()
    model.config.return_dict = False
    trainer = SADATrainer(
        model=model,
        args=training_args(tmp_path, num_train_epochs=2),
        train_dataset=sada(cifar_train),
        compute_loss_func=loss_func,
    )
    trainer.train()
    assert torch.equal(trainer.sada_state.visits, torch.full((300,), 2, dtype=torch.int32))


class _HalfEpochs(TrainerCallback):
    """Ends every epoch after half of its steps."""

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1
        if self.steps == 5:
            control.should_epoch_stop = True


def test_epochs_ended_early_are_counted_from_the_loop(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(tmp_path, num_train_epochs=6, remove_unused_columns=False),
        train_dataset=sada(cifar_train),
        callbacks=[_HalfEpochs()],
    )
    trainer.train()
    state = trainer.sada_state
    assert trainer.state.global_step == 30 and state.epochs_completed == 6 and len(state.history) == 6
    # 5 steps of 32 per epoch: every visit is stored (none dropped as "already seen this epoch").
    assert int(state.visits.sum()) == 6 * 160


def test_transform_epoch_callback_counts_the_loop_epochs(tmp_path, cifar_train):
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(warmup_strength=0.5))
    seen = []

    class Spy(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            seen.append(int(transform.schedule.epoch))

    Trainer(
        model=tiny_vit(),
        args=training_args(tmp_path, num_train_epochs=4, remove_unused_columns=False),
        train_dataset=cifar_train.add_column("index", list(range(300))).with_transform(transform),
        callbacks=[TransformEpochCallback(transform), _HalfEpochs(), Spy()],
    ).train()
    assert seen == [0, 1, 2, 3]


def test_inactive_is_trainer(tmp_path, cifar_train):
    def users_transform(batch):
        return {"pixel_values": torch.zeros(len(batch["label"]), 3, 32, 32), "labels": batch["label"]}

    dataset = cifar_train.with_transform(users_transform)
    inactive = SADATrainer(model=tiny_vit(), args=training_args(tmp_path / "a"), train_dataset=dataset)
    plain = Trainer(model=tiny_vit(), args=training_args(tmp_path / "b"), train_dataset=dataset)
    assert inactive.sada_state is None and type(inactive.data_collator) is type(plain.data_collator)
    # Trainer's column removal (which drops the raw columns a set_transform needs) is left as it is.
    ours, theirs = inactive._remove_unused_columns(dataset), plain._remove_unused_columns(dataset)
    assert ours.column_names == theirs.column_names
    assert ours.format == theirs.format
    assert [c.__class__.__name__ for c in inactive.callback_handler.callbacks] == [
        c.__class__.__name__ for c in plain.callback_handler.callbacks
    ]


def test_the_hf_tutorial_imagefolder_flow(tmp_path, cifar_train):
    # An imagefolder on disk, as the tutorial's food101 subset: class folders of JPEG files.
    names = cifar_train.features["label"].names
    for row in range(60):
        example = cifar_train.select([row]).with_format(None)[0]
        folder = tmp_path / "images" / names[example["label"]]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{row}.jpg").write_bytes(
            example["image"]["bytes"] if isinstance(example["image"], dict) else _jpeg(example["image"])
        )
    data = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "images"))["train"]
    data = data.train_test_split(test_size=0.2, seed=0)["train"]  # a shuffled, selected view
    transform = SADATransform(size=32, mean=MEAN, std=STD, config=SADAConfig(window=2))
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(
            tmp_path / "out", num_train_epochs=3, per_device_train_batch_size=8
        ),  # default column removal
        train_dataset=data.with_transform(transform),
        data_collator=DefaultDataCollator(),
    )
    trainer.train()
    assert torch.equal(trainer.sada_state.visits, torch.full((48,), 3, dtype=torch.int32))


def _jpeg(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_index_column_is_added_without_rewriting_a_shuffled_dataset(tmp_path, cifar_train):
    cifar_train.save_to_disk(str(tmp_path / "saved"))
    on_disk = datasets.load_from_disk(str(tmp_path / "saved")).shuffle(seed=3).select(range(250))
    files_before = sorted(os.listdir(tmp_path / "saved"))
    indexed = add_index_column(on_disk, "index")
    assert indexed._indices is not None  # the view's mapping is kept: nothing was flattened
    assert sorted(os.listdir(tmp_path / "saved")) == files_before
    assert indexed["index"] == list(range(250))
    raw_before = on_disk.with_format(None)
    raw_after = indexed.with_format(None)
    for row in (0, 17, 249):
        assert (
            raw_after[row]["image"] == raw_before[row]["image"] and raw_after[row]["label"] == raw_before[row]["label"]
        )
    # Oversampling (a row shown twice) cannot keep the mapping: it is flattened, with a warning.
    repeated = add_index_column(on_disk.select([0, 1, 1]), "index")
    assert repeated["index"] == [0, 1, 2]


def test_float16_store_keeps_extreme_logit_gaps_finite():
    from sada_hf.store import InfluenceStore

    store = InfluenceStore(2, 3, window=2, store_dtype="float16")
    extreme = torch.tensor([[0.0, 1e6, -1e6], [0.0, 1.0, 2.0]])
    for round in range(4):
        store.update(torch.arange(2), extreme + round, round)
    assert torch.isfinite(store.log_probs).all()
    assert torch.isfinite(store.variance).all()  # not NaN after a whole window
    np.testing.assert_allclose(store.log_probs[0, 2].item(), torch.finfo(torch.float16).min)
