"""Label-issue suspects from the probes: scores against a float64 recomputation, flipped labels ranked
first, the command on the main job's output, and errors that name the fix."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from sada_hf import SADAConfig, SADATrainer, SADATransform, label_issues
from sada_hf.cli import main, train
from sada_hf.data import load_digits
from sada_hf.label_issues import SHEET
from sada_hf.probe import Probe

from conftest import tiny_resnet, training_args


@pytest.fixture(scope="module")
def noisy_digits_run(tmp_path_factory):
    """Digits with 10% of the training labels flipped to another class, probed at each epoch end; the
    probes' logits recorded on the side."""
    train_split = load_digits(seed=0)["train"]
    rng = np.random.default_rng(0)
    labels = np.array(train_split["label"])
    flipped = rng.choice(len(labels), len(labels) // 10, replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    noisy = train_split.remove_columns("label").add_column("label", labels.tolist())
    noisy = noisy.cast_column("label", train_split.features["label"])

    recorded = []
    original_run = Probe.run

    def recording_run(self, *args, **kwargs):
        indices, logits = original_run(self, *args, **kwargs)
        recorded.append((indices.clone(), logits.double().clone()))
        return indices, logits

    Probe.run = recording_run
    try:
        output_dir = tmp_path_factory.mktemp("noisy")
        config = SADAConfig(influence="probe", window=2, normalization="rank")
        transform = SADATransform(size=32, mean=(0.5,) * 3, std=(0.5,) * 3, horizontal_flip=False, config=config)
        trainer = SADATrainer(
            model=tiny_resnet(),
            args=training_args(output_dir, num_train_epochs=12, per_device_train_batch_size=64, learning_rate=3e-3),
            train_dataset=noisy.with_transform(transform),
        )
        trainer.train()
    finally:
        Probe.run = original_run
    return trainer, labels, flipped, recorded


def test_scores_match_a_float64_recomputation_from_the_probe_logits(noisy_digits_run):
    trainer, labels, _, recorded = noisy_digits_run
    issues = trainer.label_issues().sort("index")
    assert len(recorded) == 12 and issues["index"] == list(range(len(labels)))
    logits = torch.stack([logits[torch.argsort(indices)] for indices, logits in recorded])  # probes x N x K
    target = torch.from_numpy(labels)
    gold = logits.gather(2, target.expand(12, -1)[..., None]).squeeze(2)
    best_other = logits.scatter(2, target.expand(12, -1)[..., None], float("-inf")).max(2).values
    probability = torch.softmax(logits, 2).gather(2, target.expand(12, -1)[..., None]).squeeze(2)
    np.testing.assert_allclose(issues["aum"], (gold - best_other).mean(0).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(issues["confidence"], probability.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(issues["variability"], probability.std(0, unbiased=False).numpy(), atol=1e-5)
    correct = (logits.argmax(2) == target).double().mean(0).numpy()
    np.testing.assert_allclose(issues["correctness"], correct)
    assert issues["predicted_label"] == logits[-1].argmax(1).tolist() and issues["given_label"] == labels.tolist()
    assert issues["suspect"] == ((gold - best_other).mean(0) < 0).tolist()


def test_flipped_labels_are_ranked_first(noisy_digits_run):
    trainer, labels, flipped, _ = noisy_digits_run
    ranking = np.array(trainer.label_issues()["index"])
    is_flipped = np.isin(ranking, flipped)
    precision_at_k = is_flipped[: len(flipped)].mean()
    # AUROC: the chance that a flipped example ranks before a clean one.
    positions = np.arange(len(ranking))
    auroc = 1 - (positions[is_flipped][:, None] > positions[~is_flipped][None, :]).mean()
    assert precision_at_k >= 0.7 and auroc >= 0.95, (precision_at_k, auroc)  # random: 0.1 and 0.5


def test_the_command_on_the_main_jobs_output(tmp_path, capsys):
    quick = [
        "--num_train_epochs",
        "4",
        "--max_train_samples",
        "120",
        "--max_eval_samples",
        "50",
        "--disable_tqdm",
        "true",
    ]
    train(["--output_dir", str(tmp_path), "--influence", "probe", "--window", "2", *quick])
    card = (tmp_path / "README.md").read_text()
    assert "### Label-issue suspects" in card and f"({SHEET})" in card
    capsys.readouterr()
    main(["label-issues", str(tmp_path), "--top", "5"])
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == 5
    ranking = label_issues(tmp_path)
    assert [int(line.split("|")[2]) for line in table] == ranking["index"][:5]
    assert f"{sum(ranking['suspect']):,} of {len(ranking):,} training examples" in card  # the card's count
    with Image.open(tmp_path / SHEET) as sheet:
        assert sheet.format == "PNG" and sheet.size[0] > 300


def test_a_folder_without_dynamics_names_the_fix(tmp_path):
    with pytest.raises(SystemExit, match="influence='probe'"):
        main(["label-issues", str(tmp_path)])


def test_a_run_without_probes_names_the_fix(tmp_path, cifar_train):
    trainer = SADATrainer(
        model=tiny_resnet(),
        args=training_args(tmp_path, num_train_epochs=1),
        train_dataset=cifar_train.with_transform(SADATransform(size=32)),
    )
    with pytest.raises(ValueError, match=r"SADAConfig\(influence='probe'\)"):
        trainer.label_issues()


def test_label_issues_is_a_ranked_dataset(noisy_digits_run):
    issues = noisy_digits_run[0].label_issues()
    assert isinstance(issues, datasets.Dataset)
    assert issues["aum"] == sorted(issues["aum"])
