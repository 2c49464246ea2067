"""Kill `sada-hf train` with SIGKILL at any point, rerun the same command, and it ends exactly where the
uninterrupted run ends: weights, per-example summary, evaluation metrics and losses.

The points: while each file of a checkpoint is written (and its record is opened and closed), mid-epoch,
while an old checkpoint is deleted, while each file of the end of training is written; and, on 2
processes, one rank killed while it writes its shard. The kills of one kind follow each other (each rerun
is killed at the next point), so every rerun resumes from what the previous kill left. One-process runs
are forked from a server that imported the job once (tests/crash_points.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file

import crash_points

# Digits, a ViT of one layer, 3 epochs of 3 steps: checkpoints at steps 3, 6 and 9, two kept (so saving
# step 9 deletes checkpoint-3).
OPTIONS = [
    "--max_train_samples", "96", "--max_eval_samples", "48", "--num_train_epochs", "3",
    "--per_device_train_batch_size", "32", "--save_total_limit", "2",
    "--config_overrides", "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64",
    "--disable_tqdm", "true", "--use_cpu", "true",
]  # fmt: skip
KILLED = -9  # a process's exit code after SIGKILL
END_OF_TRAINING = [
    "model.safetensors",
    "sada_examples.parquet",
    "README.md@2",
    "sada_data_map.png",
    "eval_results.json",
]


def command(output: Path) -> list[str]:
    return ["--output_dir", str(output), *OPTIONS]


@pytest.fixture(scope="module")
def run_job():
    """`run_job(output, point, *extra)`: the job's exit code, killed at `point` (None: never), with `extra`
    options after the test's own."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["crash_points"])

    def run(output: Path, point: str | None = None, *extra: str) -> int:
        process = context.Process(target=crash_points.run, args=([*command(output), *extra], point, f"{output}.log"))
        process.start()
        process.join(timeout=600)
        return process.exitcode

    return run


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, run_job):
    output = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert run_job(output) == 0, Path(f"{output}.log").read_text()[-3000:]
    return output


def outcome(output: Path) -> dict:
    """What a finished run leaves: final weights, per-example summary, evaluation metrics, logged losses."""
    metrics = json.loads((output / "eval_results.json").read_text())
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    return {
        "weights": load_file(output / "model.safetensors"),
        "summary": pq.read_table(output / "sada_examples.parquet").to_pydict(),
        "metrics": {name: value for name, value in metrics.items() if not name.endswith(("runtime", "per_second"))},
        "losses": [(entry["step"], entry["loss"]) for entry in history if "loss" in entry],
    }


def assert_same_outcome(output: Path, reference: Path) -> None:
    got, expected = outcome(output), outcome(reference)
    assert got["weights"].keys() == expected["weights"].keys()
    for name, tensor in expected["weights"].items():
        assert got["weights"][name].equal(tensor), name
    assert got["summary"].keys() == expected["summary"].keys()
    for name, values in expected["summary"].items():
        np.testing.assert_array_equal(np.asarray(got["summary"][name]), np.asarray(values), err_msg=name)
    assert got["metrics"] == expected["metrics"]
    assert got["losses"] == expected["losses"] and len(expected["losses"]) == 3


def kill_then_finish(run_job, output: Path, points: list[str]) -> str:
    """Run the same command once per point, each killed there, then once more to the end; returns the log."""
    for point in points:
        code = run_job(output, point)
        assert code == KILLED, (
            f"{point}: exit code {code}, not killed there\n" + Path(f"{output}.log").read_text()[-3000:]
        )
    assert run_job(output) == 0, Path(f"{output}.log").read_text()[-3000:]
    return Path(f"{output}.log").read_text()


def test_killed_while_each_checkpoint_file_is_written(tmp_path, run_job, uninterrupted):
    files = sorted(p.name for p in (uninterrupted / "checkpoint-6").iterdir())
    assert {"model.safetensors", "optimizer.pt", "sada_state.safetensors", "checkpoint_record.json"} <= set(files)
    # Every file's first write, and the record's second (the checkpoint declared complete).
    points = [f"write:checkpoint-6/{name}" for name in files] + ["write:checkpoint-6/checkpoint_record.json@2"]
    log = kill_then_finish(run_job, tmp_path / "run", points)
    assert_same_outcome(tmp_path / "run", uninterrupted)
    # Each rerun resumed from checkpoint-3, naming the incomplete checkpoint-6 it skipped in one line.
    skipped = [line for line in log.splitlines() if "Skipping the incomplete checkpoint" in line]
    assert len(skipped) == len(points)
    assert all(f"{tmp_path / 'run' / 'checkpoint-6'}:" in line for line in skipped)
    assert log.count(f"Resuming from {tmp_path / 'run' / 'checkpoint-3'},") == len(points)


def test_killed_mid_epoch_while_deleting_and_while_writing_the_end_of_training(tmp_path, run_job, uninterrupted):
    points = ["step:5", "delete:checkpoint-3"] + [f"write:{name}" for name in END_OF_TRAINING]
    log = kill_then_finish(run_job, tmp_path / "run", points)
    assert_same_outcome(tmp_path / "run", uninterrupted)
    assert not list((tmp_path / "run").glob(".saving-*"))  # a killed save's staging folder is cleared
    assert log.count(f"Resuming from {tmp_path / 'run' / 'checkpoint-9'},") == len(END_OF_TRAINING) + 1


def test_overwrite_output_dir_deletes_the_checkpoints_and_starts_over(tmp_path, run_job, uninterrupted):
    output = tmp_path / "run"
    shutil.copytree(uninterrupted, output)
    # Zeroed weights of the same size: the record still calls checkpoint-9 complete, so a run that resumed
    # from it instead of starting over would end with these weights.
    poisoned = output / "checkpoint-9" / "model.safetensors"
    save_file({name: torch.zeros_like(t) for name, t in load_file(poisoned).items()}, poisoned, {"format": "pt"})
    assert poisoned.stat().st_size == (uninterrupted / "checkpoint-9" / "model.safetensors").stat().st_size
    assert run_job(output, None, "--overwrite_output_dir", "true") == 0, Path(f"{output}.log").read_text()[-3000:]
    log = Path(f"{output}.log").read_text()
    assert f"--overwrite_output_dir: deleting the 2 checkpoints in {output}." in log
    assert "Resuming from" not in log
    assert_same_outcome(output, uninterrupted)
    assert load_file(output / "checkpoint-9" / "model.safetensors")["classifier.weight"].abs().sum() > 0


def test_refuses_to_train_over_a_saved_model_with_no_checkpoint_to_resume(tmp_path, run_job, uninterrupted):
    output = tmp_path / "run"
    shutil.copytree(uninterrupted, output)
    for checkpoint in output.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    model = (output / "model.safetensors").read_bytes()
    assert run_job(output) == 1
    log = Path(f"{output}.log").read_text()
    assert (
        f"{output} holds a trained model (model.safetensors) and no complete checkpoint to resume from: training "
        "would overwrite it. Pass --overwrite_output_dir to train again there, or choose another --output_dir."
    ) in log
    assert (output / "model.safetensors").read_bytes() == model  # nothing already trained is lost
    assert not list(output.glob("checkpoint-*"))


def launch(output: Path, point: str | None = None) -> int:
    """The job on 2 processes (gloo on the CPU) through `accelerate launch`; rank 1 is killed at `point`."""
    script = Path(__file__).with_name("crash_points.py")
    killing = ["--point", point, "--rank", "1"] if point else []
    launcher = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--monitor_interval", "1",
    ]  # fmt: skip
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    argv = [*launcher, str(script), "--log", f"{output}.log", *killing, *command(output)]
    return subprocess.run(argv, env=environment, capture_output=True, timeout=900).returncode


def test_two_processes_one_rank_killed_mid_save(tmp_path):
    assert launch(tmp_path / "uninterrupted") == 0, Path(f"{tmp_path / 'uninterrupted'}.log.rank0").read_text()[-3000:]
    shard = "sada_state-rank-00001-of-00002.safetensors"
    assert launch(tmp_path / "run", f"write:checkpoint-6/{shard}") != 0
    assert "checkpoint_record.json" in os.listdir(tmp_path / "run" / "checkpoint-6")  # rank 0 had opened it
    assert launch(tmp_path / "run") == 0, Path(f"{tmp_path / 'run'}.log.rank0").read_text()[-3000:]
    assert_same_outcome(tmp_path / "run", tmp_path / "uninterrupted")
    log = Path(f"{tmp_path / 'run'}.log.rank0").read_text()
    assert f"Skipping the incomplete checkpoint {tmp_path / 'run' / 'checkpoint-6'}:" in log
