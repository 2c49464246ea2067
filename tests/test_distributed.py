"""2 and 3 CPU processes on gloo through `accelerate launch`, each keeping only its own examples' store rows.

The shards must add up to a one-process store fed the same rows, every rank must hold the same strengths,
V and visits, every example is recorded once per epoch (or per probe), and a checkpoint resumes exactly
with the same number of processes and re-sharded with another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sada_hf import SADAConfig, SADAState
from sada_hf.label_issues import label_overrides
from sada_hf.persistence import shard_file
from sada_hf.strengths import DROP_LABEL, KEEP_LABEL

from conftest import example_labels

EPOCHS = 4
N = 299  # as in tests/distributed_run.py
SETTINGS = ("plain", "accumulation", "uneven", "probe")
VISITS = {"probe": 2 * EPOCHS}  # two probes per epoch, each covering every example once across the ranks


def launch(output: Path, processes: int, cifar_path, *extra: str) -> subprocess.CompletedProcess:
    script = Path(__file__).with_name("distributed_run.py")
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        str(script), "--output", str(output), "--epochs", str(EPOCHS), "--cifar", str(cifar_path), *extra,
    ]  # fmt: skip
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def two(tmp_path_factory, cifar_path):
    output = tmp_path_factory.mktemp("two")
    return output, launch(output, 2, cifar_path)


@pytest.fixture(scope="module")
def three(tmp_path_factory, cifar_path, two):
    output = tmp_path_factory.mktemp("three")
    resume_from = str(two[0] / "plain")
    return output, launch(output, 3, cifar_path, "--settings", "probe", "resumed", "--resume-from", resume_from)


def load_union(directory: Path, setting: str) -> SADAState:
    """The sharded state of `directory`, loaded into one process: the union of the shards."""
    config = dict(influence="probe", probe_every=0.5) if setting in ("probe",) else {}
    state = SADAState(example_labels(N, 10), 10, SADAConfig(window=2, augmentation_seed=0, **config))
    state.load(directory)
    return state


def ranks(output: Path, setting: str, world_size: int) -> list[dict[str, torch.Tensor]]:
    return [load_file(str(output / setting / f"rank{r}.safetensors")) for r in range(world_size)]


def assert_equal(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(("world_size", "setting"), [(2, s) for s in SETTINGS] + [(3, "probe")])
def test_shards_add_up_to_one_store_and_every_rank_holds_the_same_vectors(two, three, world_size, setting):
    output = (two if world_size == 2 else three)[0]
    assert (output / setting / "final" / shard_file(world_size - 1, world_size)).is_file()
    union = load_union(output / setting / "final", setting)
    assert union.resharded_from == world_size
    written = ranks(output, setting, world_size)
    for name, tensor in union.store.state_dict().items():
        if name != "nonfinite_skipped":
            for rank in written:  # every rank's one-process reference saw the same rows
                assert_equal(tensor, rank[f"reference.store.{name}"])
    for rank in written:
        for name in ("strengths", "variance", "visits"):
            assert_equal(rank[name], written[0][name])
    assert_equal(written[0]["variance"], union.store.variance)
    # every example recorded once per epoch (or per probe); repeats that even out batches are not
    assert torch.equal(written[0]["visits"], torch.full((N,), VISITS.get(setting, EPOCHS), dtype=torch.int32))
    assert not torch.isnan(written[0]["strengths"]).any()


@pytest.mark.parametrize(("world_size", "setting"), [(2, s) for s in SETTINGS] + [(3, "probe")])
def test_every_example_is_scored_once_per_epoch_and_every_rank_ranks_alike(two, three, world_size, setting):
    output = (two if world_size == 2 else three)[0]
    union = load_union(output / setting / "final", setting)
    written = ranks(output, setting, world_size)
    for name, tensor in union.margins.state_dict().items():  # the shards add up to one store fed every row
        for rank in written:
            assert_equal(tensor, rank[f"reference.margins.{name}"])
    assert torch.equal(union.margins.visits, torch.full((N,), EPOCHS, dtype=torch.int32))  # once per epoch
    for rank in written:
        assert_equal(rank["ranking"], written[0]["ranking"])  # the same label-issue ranking on every rank
        for name in ("aum", "confidence", "variability", "correctness", "step_visits", "predicted"):
            assert_equal(rank[f"dynamics.{name}"], written[0][f"dynamics.{name}"])
    assert sorted(written[0]["ranking"].tolist()) == list(range(N))


def test_every_process_drops_the_same_suspects_as_one_process_decides_from_the_statistics(two):
    written = ranks(two[0], "label_issues", 2)
    statistics = {name.removeprefix("dynamics."): t.numpy() for name, t in written[0].items() if "dynamics." in name}
    statistics["label"] = written[0]["labels"].numpy()
    expected = torch.from_numpy(label_overrides(statistics, "drop"))
    assert (expected == DROP_LABEL).any()
    for rank in written:
        assert_equal(rank["label_overrides"], expected)
    assert (written[0]["label_overrides"] != KEEP_LABEL).sum() == (expected == DROP_LABEL).sum()
    for name in ("plain", "probe"):  # without the option every label is kept
        assert (ranks(two[0], name, 2)[0]["label_overrides"] == KEEP_LABEL).all()


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_process_writes_its_shard_and_the_last_checkpoint_is_final(two, setting):
    output = two[0]
    records = [json.loads((output / setting / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert records[0]["world_size"] == 2
    assert len(records[0]["saves"]) == EPOCHS and records[1]["saves"] == records[0]["saves"]
    last, final = load_union(Path(records[0]["saves"][-1]), setting), load_union(output / setting / "final", setting)
    for name, tensor in final.store.state_dict().items():
        assert_equal(last.store.state_dict()[name], tensor)
    assert_equal(last.strengths, final.strengths)


def test_resuming_with_the_same_processes_is_exact(two):
    output = two[0]
    resumed, uninterrupted = (
        load_union(output / "resumed" / "final", "plain"),
        load_union(output / "plain" / "final", "plain"),
    )
    for name, tensor in uninterrupted.store.state_dict().items():
        assert_equal(resumed.store.state_dict()[name], tensor)
    assert_equal(resumed.strengths, uninterrupted.strengths)
    assert resumed.history == uninterrupted.history


def test_resuming_with_more_processes_reshards(three):
    output, result = three
    assert "was saved by 2 processes; this run has 3, so the store was re-sharded" in result.stderr
    written = ranks(output, "resumed", 3)
    # 2 epochs saved; Trainer resumes step 10 of 4-step epochs mid-epoch, skipping that epoch's first batches
    visits = written[0]["visits"]
    assert int(visits.max()) == EPOCHS and int(visits.min()) == EPOCHS - 1
    for rank in written:
        assert_equal(rank["strengths"], written[0]["strengths"])
    assert load_union(output / "resumed" / "final", "plain").epochs_completed == EPOCHS


def test_each_process_logs_what_it_holds(two, three):
    for (_, result), world_size in ((two, 2), (three, 3)):
        for rank in range(world_size):
            size = len(range(rank, N, world_size))
            assert f"SADA store: rank {rank}/{world_size} holds {size} of {N} examples (" in result.stderr
