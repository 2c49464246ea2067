"""Model card (offline), plots and Hub push (with the Hub client replaced by a recorder)."""

from __future__ import annotations

import math
import shutil
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import transformers.trainer as upstream
from huggingface_hub import ModelCard
from PIL import Image

from sada_hf import SADAConfig, SADAState, SADATrainer, SADATransform
from sada_hf.card import sada_section
from sada_hf.persistence import STATE_FILE, SUMMARY_FILE
from sada_hf.plots import CLASS_STRENGTHS_PLOT, STRENGTHS_PLOT, class_strengths
from sada_hf.review import REVIEW_PAGE

from conftest import example_labels, tiny_vit, training_args


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar_train):
    output_dir = tmp_path_factory.mktemp("card")
    transform = SADATransform(size=32, config=SADAConfig(window=2, normalization="rank"))
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(output_dir, num_train_epochs=4),
        train_dataset=cifar_train.with_transform(transform),
    )
    trainer.train()
    return trainer


def test_card_has_the_sada_section_tag_and_plots(trained):
    trained.create_model_card(tasks="image-classification")
    path = Path(trained.args.output_dir) / "README.md"
    card = ModelCard.load(path)
    assert "sada" in card.data.tags and "generated_from_trainer" in card.data.tags
    assert "This model was trained from scratch" in card.text and "fine-tuned version of []" not in card.text
    rows = [line for line in card.text.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == 4  # one per epoch
    last = trained.sada_state.history[-1]
    assert rows[-1].startswith(f"| 4 | 0% | {last.strength_mean:.3f} |")
    assert f"![sada_strengths]({STRENGTHS_PLOT})" in card.text
    for name in (STRENGTHS_PLOT, CLASS_STRENGTHS_PLOT):
        with Image.open(Path(trained.args.output_dir) / name) as image:
            assert image.format == "PNG" and image.size[0] >= 600

    trained.create_model_card()  # a second card replaces the section instead of repeating it
    assert ModelCard.load(path).text.count("## SADA augmentation") == 1


def test_pretrained_models_keep_their_base_model(trained):
    trained.create_model_card(finetuned_from="google/vit-base-patch16-224-in21k")
    card = ModelCard.load(Path(trained.args.output_dir) / "README.md")
    assert card.data.base_model == "google/vit-base-patch16-224-in21k"
    assert "fine-tuned version of [google/vit-base-patch16-224-in21k]" in card.text


def test_section_describes_the_configuration(trained):
    text = sada_section(trained.sada_state)
    assert (
        "| `normalization` | `rank` |" in text and "| `window` | `2` |" in text and "| `warmup_strength` | - |" in text
    )
    assert "rotate 30" in text and "posterize 4" in text and "Stable examples were augmented strongly" in text


def test_class_strengths_by_hand():
    strengths = np.array([0.2, 0.4, math.nan, 1.0, 0.0, 0.5])
    labels = np.array([0, 0, 0, 1, 1, 2])
    means, stds = class_strengths(strengths, labels, 4)
    np.testing.assert_allclose(means[:3], [0.3, 0.5, 0.5])
    np.testing.assert_allclose(stds[:3], [0.1, 0.5, 0.0])
    assert math.isnan(means[3])


class RecordingHub:
    """Stands in for `huggingface_hub.HfApi`: records what would be uploaded."""

    def __init__(self, snapshot_dir: Path):
        self.snapshot_dir, self.uploads = snapshot_dir, []

    def create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": f"user/{repo_id}"})()

    def upload_folder(self, repo_id, folder_path, ignore_patterns=(), **kwargs):
        target = self.snapshot_dir / str(len(self.uploads))
        shutil.copytree(folder_path, target, ignore=shutil.ignore_patterns(*ignore_patterns))
        self.uploads.append((repo_id, target))
        done = Future()  # what run_as_future=True returns, already finished
        done.set_result(None)
        return done


def test_push_to_hub_uploads_model_card_plots_and_summary(tmp_path, cifar_train, monkeypatch):
    hub = RecordingHub(tmp_path / "hub")
    monkeypatch.setattr(upstream, "hf_api", lambda: hub)
    transform = SADATransform(size=32, config=SADAConfig(window=2))
    trainer = SADATrainer(
        model=tiny_vit(),
        args=training_args(
            tmp_path / "out", num_train_epochs=3, push_to_hub=True, hub_model_id="vit-sada", save_strategy="epoch"
        ),
        train_dataset=cifar_train.select(range(100)).with_transform(transform),
    )
    trainer.train()
    trainer.push_to_hub()
    repo_id, uploaded = hub.uploads[-1]
    assert repo_id == "user/vit-sada"
    files = {p.name for p in uploaded.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "README.md",
        SUMMARY_FILE,
        STRENGTHS_PLOT,
        CLASS_STRENGTHS_PLOT,
        REVIEW_PAGE,
    } <= files
    assert STATE_FILE not in files  # the N x K resumable state stays in checkpoints
    assert "## SADA augmentation" in (uploaded / "README.md").read_text()
    assert f"]({REVIEW_PAGE})" in (uploaded / "README.md").read_text()  # the card links the page it comes with
    summary = pq.read_table(uploaded / SUMMARY_FILE).to_pydict()
    assert summary["visits"] == trainer.sada_state.visits.tolist()
    # Checkpoint pushes (hub_strategy "every_save") carry the summary of their checkpoint.
    _, first_push = hub.uploads[0]
    assert pq.read_table(first_push / SUMMARY_FILE).to_pydict()["visits"] == [1] * 100


def test_section_says_what_the_margin_strategy_augments():
    config = SADAConfig(strategy="margin", direction="unstable_strong", augmentation_seed=0)
    text = sada_section(SADAState(example_labels(20, 4), 4, config))
    assert "area under the margin" in text and "Low-margin (hard) examples were augmented strongly" in text
    assert "| `strategy` | `margin` |" in text and "| training examples | 20 |" in text
