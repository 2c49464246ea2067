"""SADAState: epoch logic, strategies, statistics, and exact, atomic, validated persistence."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch

import sada_hf.persistence as persistence_module
from sada_hf import SADAConfig, SADAState
from sada_hf.persistence import STATE_FILE
from sada_hf.strengths import instability_strengths

from conftest import example_labels

N, K = 40, 5


def run_epochs(state: SADAState, epochs: int, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        state.begin_epoch()
        order = torch.randperm(state.num_examples, generator=generator)
        for batch in order.split(16):
            state.observe(batch, torch.randn(len(batch), state.num_labels, generator=generator) * 3)
        state.end_epoch()


def assert_same_state(a: SADAState, b: SADAState) -> None:
    for name, tensor in a.store.state_dict().items():
        torch.testing.assert_close(tensor, b.store.state_dict()[name], rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(a.strengths, b.strengths, rtol=0, atol=0, equal_nan=True)
    assert (a.epoch, a.epochs_completed, a.history) == (b.epoch, b.epochs_completed, b.history)


def test_strengths_appear_after_the_third_visit():
    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0))
    run_epochs(state, 2)
    assert torch.isnan(state.strengths).all()
    assert [h.warmup_fraction for h in state.history] == [1.0, 1.0]
    run_epochs(state, 1)
    assert not torch.isnan(state.strengths).any()
    expected = instability_strengths(state.variance, "rank", "stable_strong")  # the default
    assert torch.equal(state.strengths, expected)


def test_epoch_statistics_describe_the_published_strengths():
    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0, normalization="rank"))
    run_epochs(state, 4)
    stats = state.history[-1]
    s = state.strengths.double()
    assert stats.epoch == 4 and stats.warmup_fraction == 0.0 and stats.publication == 4
    assert stats.strength_mean == pytest.approx(float(s.mean()))
    assert stats.strength_std == pytest.approx(float(s.std(unbiased=False)))
    assert stats.strength_median == pytest.approx(float(torch.quantile(s, 0.5)))
    assert stats.expected_strength == pytest.approx(stats.strength_mean)
    assert sum(stats.histogram) == N
    json.dumps([dataclasses.asdict(h) for h in state.history])  # serialisable, no NaN


def observation_plan(epochs: int, seed: int = 0):
    """Per epoch, the (indices, logits) batches of a shuffled pass over N examples."""
    generator = torch.Generator().manual_seed(seed)
    return [
        [
            (batch, torch.randn(len(batch), K, generator=generator) * 3)
            for batch in torch.randperm(N, generator=generator).split(16)
        ]
        for _ in range(epochs)
    ]


def test_begin_epoch_runs_a_skipped_epoch_end():
    plan = observation_plan(3)
    reference = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0))
    interrupted = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0))
    for epoch, batches in enumerate(plan):
        for state in (reference, interrupted):
            state.begin_epoch()
            for indices, logits in batches:
                state.observe(indices, logits)
        reference.end_epoch()
        if epoch < 2:  # a checkpoint written by the last step of epoch 2 precedes its epoch end
            interrupted.end_epoch()
    assert interrupted.epoch_open and interrupted.epochs_completed == 2
    with pytest.raises(RuntimeError, match="end it first"):
        interrupted.begin_epoch()
    interrupted.end_epoch()  # what the trainer does on resume
    for state in (interrupted, reference):
        state.begin_epoch()
    assert interrupted.epoch == 3
    assert_same_state(interrupted, reference)


@pytest.mark.parametrize("strategy", ["sada", "sada_shuffled", "entropy", "random", "trivialaugment", "none"])
def test_strategies_publish_what_they_promise(strategy):
    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0, strategy=strategy))
    initial = state.strengths
    run_epochs(state, 4)
    sada = instability_strengths(state.variance, "rank", "stable_strong")
    published = state.strengths
    if strategy == "sada":
        assert torch.equal(published, sada)
    elif strategy == "sada_shuffled":
        assert sorted(published.tolist()) == sorted(sada.tolist()) and not torch.equal(published, sada)
    elif strategy == "entropy":
        assert not torch.isnan(published).any() and 0 <= float(published.min()) <= float(published.max()) <= 1
    elif strategy == "random":
        assert not torch.isnan(initial).any() and torch.equal(published, initial)
    else:
        assert torch.isnan(published).all()
    expected_strength = state.history[-1].expected_strength
    assert expected_strength == (0.0 if strategy == "none" else pytest.approx(float(published.nan_to_num(0.5).mean())))


def test_save_and_load_restore_exactly(tmp_path):
    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4, window=5, strategy="sada_shuffled"))
    run_epochs(state, 4)
    state.begin_epoch()
    state.observe(torch.arange(10), torch.randn(10, K))  # mid-epoch
    state.save(tmp_path)
    assert {STATE_FILE, "sada_config.json"} <= set(os.listdir(tmp_path))
    assert json.loads((tmp_path / "sada_config.json").read_text())["config"]["window"] == 5

    restored = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4, window=5, strategy="sada_shuffled"))
    assert restored.load(tmp_path) == []
    assert_same_state(restored, state)
    for each in (state, restored):
        each.end_epoch()
        run_epochs(each, 2, seed=9)
    assert_same_state(restored, state)  # and they continue identically


def test_load_reports_changed_config_fields(tmp_path):
    SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0)).save(tmp_path)
    assert SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0, decay=0.5)).load(tmp_path) == ["decay"]


@pytest.mark.parametrize(
    "other, message",
    [
        (dict(num_examples=N + 1, num_labels=K), "40 training examples, but this run has 41"),
        (dict(num_examples=N, num_labels=K + 1), "5 labels, but this run has 6"),
    ],
)
def test_state_of_another_dataset_or_label_count_is_refused(tmp_path, other, message):
    SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0)).save(tmp_path)
    with pytest.raises(ValueError, match=message):
        SADAState(
            example_labels(other["num_examples"], other["num_labels"]),
            other["num_labels"],
            SADAConfig(augmentation_seed=0),
        ).load(tmp_path)


def test_structural_config_change_is_refused(tmp_path):
    SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0, window=10)).save(tmp_path)
    with pytest.raises(ValueError, match="window=10"):
        SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=0, window=5)).load(tmp_path)


def _trained(seed=0):
    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=seed))
    run_epochs(state, 3, seed=seed)
    return state


def _snapshot(state: SADAState):
    return {name: t.clone() for name, t in state.store.state_dict().items()}, state.strengths, state.history


def test_truncated_file_is_refused_before_anything_changes(tmp_path):
    _trained(1).save(tmp_path)
    path = tmp_path / STATE_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    target = _trained(2)
    before = _snapshot(target)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        target.load(tmp_path)
    after = _snapshot(target)
    for name in before[0]:
        torch.testing.assert_close(before[0][name], after[0][name], rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(before[1], after[1], rtol=0, atol=0, equal_nan=True)


def test_wrong_dtype_in_the_file_is_refused_before_anything_changes(tmp_path, monkeypatch):
    source = _trained(1)
    source.store.visits = source.store.visits.to(torch.int64)  # a file whose tensor has the wrong dtype
    source.save(tmp_path)
    target = _trained(2)
    before = _snapshot(target)
    with pytest.raises(ValueError, match="visits"):
        target.load(tmp_path)
    torch.testing.assert_close(before[0]["log_probs"], target.store.log_probs, rtol=0, atol=0)


def test_missing_state_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        _trained().load(tmp_path)


def test_a_crash_while_saving_leaves_the_previous_state_loadable(tmp_path, monkeypatch):
    first = _trained(1)
    first.save(tmp_path)
    second = _trained(2)

    def crash(tensors, path, metadata=None):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(persistence_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        second.save(tmp_path)
    assert set(os.listdir(tmp_path)) == {STATE_FILE, "sada_config.json"}  # no temporary left behind
    restored = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=1))
    restored.load(tmp_path)
    assert_same_state(restored, first)


def test_reset_at_an_epoch_starts_fresh_there():
    state = _trained()
    state.reset(epoch=7)
    assert state.epoch == 7 and state.epochs_completed == 7
    assert int(state.visits.sum()) == 0 and torch.isnan(state.strengths).all()
    state.begin_epoch()
    assert state.epoch == 7 and state.publications == 0


def run_probes(state: SADAState, probes: int, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(probes):
        state.observe_probe(torch.arange(N), torch.randn(N, K, generator=generator) * 3)
        state.end_probe(at_epoch=state.probes_completed + 1)


def test_probes_feed_the_store_once_per_probe_and_publish_each_time():
    state = SADAState(
        example_labels(N, K), K, SADAConfig(augmentation_seed=0, influence="probe", normalization="rank")
    )
    state.begin_epoch()
    run_probes(state, 2)
    assert state.publications == 2 and torch.isnan(state.strengths).all()  # V needs three probes
    state.observe_probe(torch.arange(N), torch.randn(N, K))
    assert state.observe_probe(torch.arange(N), torch.randn(N, K)) == 0  # a second pass in one probe is ignored
    state.end_probe(at_epoch=0.75)
    assert torch.equal(state.visits, torch.full((N,), 3, dtype=torch.int32))
    assert torch.equal(state.strengths, instability_strengths(state.variance, "rank", "stable_strong"))
    assert [h.epoch for h in state.history] == [1, 2, 0.75] and state.history[-1].publication == 3
    assert state.end_epoch() is None  # with probes, epoch ends publish nothing of their own
    assert state.publications == 3


def save_as_older_format(state: SADAState, directory, version: int) -> None:
    """`state` saved as sada_hf 0.3 (format version 3: no margins) or 0.2 (version 2: also one process's whole
    store and no per-example copies) wrote it."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    state.save(directory)
    path = str(directory / STATE_FILE)
    dropped = ("margins.", "dynamics.") + (("examples.",) if version == 2 else ())
    with safe_open(path, framework="pt") as handle:
        metadata = json.loads(handle.metadata()["metadata"])
        tensors = {name: handle.get_tensor(name) for name in handle.keys() if not name.startswith(dropped)}
    if version == 2:
        del metadata["world_size"]
    header = {"format": "sada_hf.state", "format_version": str(version), "metadata": json.dumps(metadata)}
    save_file(tensors, path, metadata=header)


@pytest.mark.parametrize("version", [2, 3])
def test_older_format_versions_still_resume_with_empty_margins(tmp_path, version):
    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4, window=5))
    run_epochs(state, 3)
    save_as_older_format(state, tmp_path, version)
    restored = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4, window=5))
    assert restored.load(tmp_path) == [] and restored.margins_missing_on_load
    assert_same_state(restored, state)
    torch.testing.assert_close(restored.variance, state.variance, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(restored.visits, state.visits)
    assert int(restored.margins.visits.sum()) == 0 and np.isnan(restored.training_dynamics["aum"]).all()
    assert not state.margins_missing_on_load and int(state.margins.visits.sum()) == 3 * N


def test_save_and_load_restore_the_margins_exactly(tmp_path):
    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4))
    run_epochs(state, 3)
    state.save(tmp_path)
    restored = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4))
    restored.load(tmp_path)
    for name, tensor in state.margins.state_dict().items():
        assert torch.equal(restored.margins.state_dict()[name], tensor), name
    for name, values in state.training_dynamics.items():
        np.testing.assert_array_equal(restored.training_dynamics[name], values, err_msg=name)


def test_a_checkpoint_of_sada_hf_0_4_resumes_with_the_votes_restarting(tmp_path):
    """Format version 4 as sada_hf 0.4 wrote it: margins without the majority vote (rows and summary)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    state = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4))
    run_epochs(state, 3)
    state.save(tmp_path)
    path = str(tmp_path / STATE_FILE)
    dropped = ("margins.vote_class", "margins.vote_count", "dynamics.suggested")
    with safe_open(path, framework="pt") as handle:
        header = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys() if name not in dropped}
    save_file(tensors, path, metadata=header)
    restored = SADAState(example_labels(N, K), K, SADAConfig(augmentation_seed=4))
    restored.load(tmp_path)
    assert torch.equal(restored.margins.margin_sum, state.margins.margin_sum)
    assert (restored.margins.vote_class == -1).all() and (restored.training_dynamics["suggested"] == -1).all()
    assert (state.training_dynamics["suggested"] >= 0).all()
