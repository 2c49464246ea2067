"""The main job end to end: `sada-hf train`, the example script, strategies, accelerate launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sada_hf.cli import train
from sada_hf.persistence import SUMMARY_FILE

ROOT = Path(__file__).resolve().parents[1]
QUICK = [
    "--num_train_epochs",
    "3",
    "--max_train_samples",
    "200",
    "--max_eval_samples",
    "100",
    "--disable_tqdm",
    "true",
]


def history(output_dir: Path) -> list[dict]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [e for e in state["log_history"] if "sada/expected_strength" in e]


def test_default_run_writes_model_card_plots_and_state(tmp_path):
    metrics = train(["--output_dir", str(tmp_path), *QUICK])
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", SUMMARY_FILE, "eval_results.json"):
        assert (tmp_path / name).is_file(), name
    for name in ("sada_strengths.png", "sada_class_strengths.png"):
        with Image.open(tmp_path / name) as plot:
            assert plot.size[0] > 600 and plot.size[1] > 400
    card = (tmp_path / "README.md").read_text()
    assert "- sada" in card and "## SADA augmentation" in card and "trained from scratch on the digits" in card
    assert [e["epoch"] for e in history(tmp_path)] == [1, 2, 3]


@pytest.mark.parametrize("strategy", ["sada", "trivialaugment", "random", "none"])
def test_strategy_flag_switches_the_strength_source(tmp_path, strategy):
    train(["--output_dir", str(tmp_path), "--strategy", strategy, "--normalization", "rank", *QUICK])
    logged = history(tmp_path)
    expected = [e["sada/expected_strength"] for e in logged]
    warmup = [e["sada/warmup_fraction"] for e in logged]
    if strategy == "none":
        assert expected == [0.0, 0.0, 0.0]
    elif strategy == "trivialaugment":
        assert warmup == [1.0, 1.0, 1.0] and expected == [0.5, 0.5, 0.5]
    elif strategy == "random":
        assert warmup == [0.0, 0.0, 0.0] and abs(expected[0] - 0.5) < 0.06
    else:  # rank strengths once V exists (third visit): mean 0.5
        assert warmup == [1.0, 1.0, 0.0] and abs(expected[2] - 0.5) < 1e-6


def _run(command: list[str], **env) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_example_script_and_console_command_agree(tmp_path):
    args = [*QUICK, "--seed", "3", "--dataloader_num_workers", "0"]
    _run([sys.executable, "examples/run_image_classification.py", "--output_dir", str(tmp_path / "example"), *args])
    console = Path(sys.executable).with_name("sada-hf")
    result = _run([str(console), "train", "--output_dir", str(tmp_path / "cli"), *args])
    assert "eval accuracy:" in result.stdout
    example = json.loads((tmp_path / "example" / "eval_results.json").read_text())
    cli = json.loads((tmp_path / "cli" / "eval_results.json").read_text())
    assert example["eval_loss"] == cli["eval_loss"] and example["eval_accuracy"] == cli["eval_accuracy"]


def test_accelerate_launch_runs_the_example_on_two_processes(tmp_path):
    _run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "examples/run_image_classification.py",
            "--output_dir",
            str(tmp_path),
            *QUICK,
            "--use_cpu",
            "true",
            "--ddp_find_unused_parameters",
            "false",
        ],  # fmt: skip  (on CPU, TrainingArguments joins the gloo process group only with --use_cpu)
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
    )
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    # 200 examples, batch 64 per process on 2 processes: 2 steps per epoch.
    assert state["global_step"] == 6
    assert [e["sada/warmup_fraction"] for e in history(tmp_path)] == [1.0, 1.0, 0.0]
    assert (tmp_path / SUMMARY_FILE).is_file() and "## SADA augmentation" in (tmp_path / "README.md").read_text()


def test_unknown_command_and_help():
    assert "usage: sada-hf train" in _run([sys.executable, "-m", "sada_hf.cli"]).stdout
    result = subprocess.run([sys.executable, "-m", "sada_hf.cli", "fit"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "unknown command 'fit'" in result.stderr
