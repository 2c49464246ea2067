"""Every label issue and summary row leads back to the user's data: through the job's subsetting and shuffling
(CIFAR-10's archive rows; an imagefolder's rows and file paths), and through the Python API (the dataset's own
rows, an id column)."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest

import sada_hf.data
from sada_hf import SADATrainer, SADATransform, label_issues
from sada_hf.cli import main, train
from sada_hf.identity import example_identity, with_row_column
from sada_hf.label_issues import SHEET_IMAGES
from sada_hf.persistence import SUMMARY_FILE, read_parquet

from conftest import tiny_resnet, training_args

QUICK = ["--model_type", "resnet", "--num_train_epochs", "1", "--max_eval_samples", "20", "--disable_tqdm", "true"]


def test_job_rows_are_the_archive_rows_through_subsetting_and_shuffling(tmp_path, monkeypatch, cifar_path):
    monkeypatch.setattr(sada_hf.data, "find_cifar10", lambda: cifar_path)
    # a seeded 40-per-class draw, shuffled, then a shuffled 120 of it: positions say nothing about the archive
    train(["--builtin_dataset", "cifar10", "--examples_per_class", "40", "--max_train_samples", "120",
           "--output_dir", str(tmp_path), *QUICK])  # fmt: skip
    with np.load(cifar_path) as archive:
        archive_labels = archive["y_train"]
    issues = label_issues(tmp_path)
    rows = np.asarray(issues["row"])
    assert len(issues) == 120 and np.unique(rows).size == 120 and "id" not in issues.column_names
    assert not np.array_equal(np.sort(rows), np.arange(120))  # archive rows, not positions
    assert np.array_equal(archive_labels[rows], issues["given_label"])  # each row is the image that was trained
    summary = read_parquet(tmp_path / SUMMARY_FILE)
    assert np.array_equal(archive_labels[summary["row"]], summary["label"])
    (tmp_path / SHEET_IMAGES).unlink()  # images in the dataset's bytes only: a later sheet needs the thumbnails
    with pytest.raises(SystemExit, match=r"^sada-hf label-issues: no contact sheet: 4 of these 4 suspects have no"):
        main(["label-issues", str(tmp_path), "--top", "4"])


def _imagefolder(folder: Path, dataset: datasets.Dataset, count: int) -> None:
    names = dataset.features["label"].names
    for i in range(count):
        example = dataset[i]
        (folder / names[example["label"]]).mkdir(parents=True, exist_ok=True)
        example["image"].save(folder / names[example["label"]] / f"{i:03d}.png")


def test_job_on_an_imagefolder_names_each_row_and_file(tmp_path, cifar_train):
    _imagefolder(tmp_path / "images", cifar_train, 80)
    # no validation folder: the job holds out a shuffled 15%, then keeps a shuffled 50 of the rest
    output = tmp_path / "out"
    train(["--train_dir", str(tmp_path / "images"), "--max_train_samples", "50", "--output_dir", str(output), *QUICK])
    loaded = datasets.load_dataset("imagefolder", data_files={"train": str(tmp_path / "images" / "**")})["train"]
    paths = [cell["path"] for cell in loaded.cast_column("image", datasets.Image(decode=False))["image"]]
    issues = label_issues(output)
    assert len(issues) == 50 and len(set(issues["row"])) == 50
    assert issues["id"] == [paths[row] for row in issues["row"]]  # the row of the folder as loaded, its file
    names = loaded.features["label"].names
    assert [Path(path).parent.name for path in issues["id"]] == [names[label] for label in issues["given_label"]]
    (output / SHEET_IMAGES).unlink()  # an imagefolder's files serve any sheet
    main(["label-issues", str(output), "--top", "12"])
    assert (output / "sada_label_issues_top_12.png").is_file()


def test_python_api_rows_are_the_datasets_own_and_ids_come_from_the_named_column(tmp_path, cifar_train):
    users = cifar_train.remove_columns("row").select(range(40))
    users = users.add_column("file", [f"img-{i}.jpg" for i in range(40)])
    transform = SADATransform(size=32, id_column="file")
    trainer = SADATrainer(
        model=tiny_resnet(), args=training_args(tmp_path), train_dataset=users.with_transform(transform)
    )
    summary = trainer.sada_state.summary()
    assert summary["row"].tolist() == list(range(40)) and summary["id"].tolist() == users["file"]


def test_identity_rules_and_refusals(cifar_train):
    with_rows = cifar_train.select(range(10))
    assert example_identity(with_rows)["row"].tolist() == with_rows["row"]  # the dataset's own row column
    positions = cifar_train.remove_columns("row").select(range(10))
    assert example_identity(positions, "image") == {"row": pytest.approx(np.arange(10))}  # bytes: no path id
    with pytest.raises(ValueError, match="no_such.*not in the dataset.*--id_column_name"):
        example_identity(positions, id_column="no_such")
    repeated = positions.add_column("row", [0, 1, 2, 3, 4, 5, 6, 7, 8, 8])
    with pytest.raises(ValueError, match="'row' column.*distinct whole numbers"):
        example_identity(repeated)  # e.g. a column of the user's with another meaning
    assert with_row_column(with_rows)["row"] == with_rows["row"]  # kept: the rows of the dataset it came from
    assert with_row_column(positions.select([3, 1]))["row"] == [0, 1]
