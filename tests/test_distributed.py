"""Two CPU processes on gloo through `accelerate launch`: every rank holds the same, complete state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sada_hf import SADAConfig, SADAState

EPOCHS = 4
SETTINGS = ("plain", "accumulation", "uneven", "probe")  # as in tests/distributed_run.py
VISITS = {"probe": 2 * EPOCHS}  # two probes per epoch, each covering every example once across the ranks


@pytest.fixture(scope="module")
def launched(tmp_path_factory, cifar_path):
    output = tmp_path_factory.mktemp("distributed")
    script = Path(__file__).with_name("distributed_run.py")
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        str(script), "--output", str(output), "--epochs", str(EPOCHS),
    ]  # fmt: skip
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "SADA_CIFAR10": str(cifar_path)}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output


def load(directory: Path, setting: str) -> SADAState:
    config = dict(influence="probe", probe_every=0.5) if setting == "probe" else {}
    state = SADAState(300, 10, SADAConfig(window=2, augmentation_seed=0, **config))
    state.load(directory)
    return state


@pytest.mark.parametrize("setting", SETTINGS)
def test_ranks_hold_bit_identical_complete_states(launched, setting):
    ranks = [load(launched / setting / f"rank{r}", setting) for r in (0, 1)]
    for name, tensor in ranks[0].store.state_dict().items():
        torch.testing.assert_close(ranks[1].store.state_dict()[name], tensor, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(ranks[1].strengths, ranks[0].strengths, rtol=0, atol=0, equal_nan=True)
    assert ranks[0].history == ranks[1].history
    # Each process sees (or probes) half the data; padding repeats (even_batches) are applied once.
    assert torch.equal(ranks[0].visits, torch.full((300,), VISITS.get(setting, EPOCHS), dtype=torch.int32))
    assert not torch.isnan(ranks[0].strengths).any()


@pytest.mark.parametrize("setting", SETTINGS)
def test_only_the_main_process_writes_and_the_last_checkpoint_is_final(launched, setting):
    records = [json.loads((launched / setting / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert records[0]["world_size"] == 2
    assert len(records[0]["saves"]) == EPOCHS and records[1]["saves"] == []
    last = load(Path(records[0]["saves"][-1]), setting)
    final = load(launched / setting / "rank0", setting)
    for name, tensor in final.store.state_dict().items():
        torch.testing.assert_close(last.store.state_dict()[name], tensor, rtol=0, atol=0, equal_nan=True)
