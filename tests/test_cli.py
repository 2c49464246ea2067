"""The main job end to end: `sada-hf train` on the embedded default and on a local checkpoint, strategies, the
example script under accelerate launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
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


def test_fine_tuning_a_local_checkpoint_with_another_number_of_labels(tmp_path, cifar_train):
    """The path a user takes with a Hub checkpoint: `from_pretrained` on a save_pretrained folder (6 classes)
    with a new 4-class head (`--ignore_mismatched_sizes`), on an imagefolder, end to end with SADATrainer."""
    from transformers import AutoModelForImageClassification, ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, num_labels=6)  # fmt: skip
    pretrained = ViTForImageClassification(config)
    pretrained.save_pretrained(tmp_path / "pretrained")
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(
        tmp_path / "pretrained"
    )
    names = cifar_train.features["label"].names
    for split, count in (("train", 16), ("val", 4)):
        for label in (0, 1, 8, 9):  # the vehicles
            rows = [i for i, y in enumerate(cifar_train["label"]) if y == label][:count]
            folder = tmp_path / split / names[label]
            folder.mkdir(parents=True)
            for i in rows:
                cifar_train[i]["image"].save(folder / f"{i}.png")
    output = tmp_path / "out"
    metrics = train(
        ["--model_name_or_path", str(tmp_path / "pretrained"), "--ignore_mismatched_sizes", "true",
         "--train_dir", str(tmp_path / "train"), "--validation_dir", str(tmp_path / "val"),
         "--num_train_epochs", "3", "--learning_rate", "0", "--per_device_train_batch_size", "16",
         "--window", "2", "--output_dir", str(output), "--disable_tqdm", "true"]
    )  # fmt: skip
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    tuned = AutoModelForImageClassification.from_pretrained(output)
    assert tuned.config.id2label == {0: "airplane", 1: "automobile", 2: "ship", 3: "truck"}
    assert tuned.classifier.weight.shape == (4, 32)  # a new head
    for name, tensor in pretrained.vit.state_dict().items():  # the encoder came from the checkpoint (lr 0)
        assert torch.equal(tuned.vit.state_dict()[name], tensor), name
    assert [e["epoch"] for e in history(output)] == [1, 2, 3]
    assert (output / SUMMARY_FILE).is_file() and "## SADA augmentation" in (output / "README.md").read_text()


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
