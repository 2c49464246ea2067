"""Decisions files: drop and relabel against a hand-computed case, by position and by the job's row column,
each bad file refused with one line before anything changes, and the command round trip export -> train."""

from __future__ import annotations

import datasets
import pytest

from sada_hf import apply_decisions, label_issues
from sada_hf.cli import main, train
from sada_hf.decisions import read_decisions, write_decisions
from sada_hf.persistence import SUMMARY_FILE, read_parquet

FEATURES = datasets.Features(
    {"file": datasets.Value("string"), "label": datasets.ClassLabel(names=["cat", "dog", "bird"])}
)


def users_dataset() -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"file": [f"f{i}.png" for i in range(6)], "label": [0, 1, 2, 0, 1, 2]}, features=FEATURES
    )


HAND = "row,given_label,action,label\n1,1,drop,\n3,0,relabel,2\n4,1,keep,\n"


def test_drop_and_relabel_a_hand_computed_case(tmp_path):
    (tmp_path / "d.csv").write_text(HAND)
    cleaned = apply_decisions(users_dataset(), tmp_path / "d.csv")
    # row 1 dropped, row 3 relabelled cat -> bird, row 4 kept as listed, rows 0, 2, 5 kept as not listed
    assert cleaned["row"] == [0, 2, 3, 4, 5] and cleaned["file"] == ["f0.png", "f2.png", "f3.png", "f4.png", "f5.png"]
    assert cleaned["label"] == [0, 2, 2, 1, 2] and cleaned.features["label"] == FEATURES["label"]
    assert cleaned.column_names == ["file", "label", "row"]


def test_the_same_decisions_by_the_jobs_row_column_as_parquet_and_in_memory(tmp_path):
    # the job's datasets carry their rows: a shuffled view is matched by row, not position
    shuffled = users_dataset().add_column("row", list(range(6))).shuffle(seed=3)
    write_decisions(tmp_path / "d.parquet", read_decisions(_csv(tmp_path, HAND)))
    for decisions in (tmp_path / "d.parquet", read_decisions(_csv(tmp_path, HAND))):
        cleaned = apply_decisions(shuffled, decisions, id_column="file")
        expected = {row: label for row, label in zip(shuffled["row"], shuffled["label"]) if row != 1}
        expected[3] = 2
        assert dict(zip(cleaned["row"], cleaned["label"])) == expected
        assert cleaned["row"] == [row for row in shuffled["row"] if row != 1]  # the order is kept


def _csv(tmp_path, text: str):
    path = tmp_path / "decisions.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("row,given_label,action,label\n9,0,drop,\n", r"line 2 \(row 9\): the dataset has no such row"),
        ("row,id,given_label,action,label\n2,f9.png,2,drop,\n", r"names id 'f9.png', the dataset has id 'f2.png'"),
        ("row,given_label,action,label\n2,2,relabel,3\n", r"label 3 is outside the dataset's classes 0..2"),
        ("row,given_label,action,label\n2,2,drop,\n2,2,keep,\n", r"line 3 \(row 2\): the example is listed twice"),
        ("row,given_label,action,label\n2,0,drop,\n", r"given_label 0 but the dataset has label 2.*another dataset"),
        ("", r"is empty: a decisions file starts with the header line"),
        ("row,given_label,action,label\n", r"lists no decisions"),
        ("row,given_label,action,label\n2,2,remove,\n", r"unknown action 'remove'; write one of keep, drop"),
        ("row,action,label\n2,drop,\n", r"lacks the column\(s\) given_label"),
        ("row,given_label,action,label\n2,2,relabel,\n", r"`label` is required for relabel"),
        ("row,given_label,action,label\n2,2,drop,1\n", r"empty otherwise.*leave `label` empty"),
        ("row,given_label,action,label\ntwo,2,drop,\n", r"`row` must be a whole number, got 'two'"),
    ],
)
def test_a_bad_file_is_refused_with_one_line(tmp_path, text, message):
    dataset = users_dataset()
    with pytest.raises(ValueError, match=message) as refused:
        apply_decisions(dataset, _csv(tmp_path, text), id_column="file")
    assert "\n" not in str(refused.value)


def test_export_then_train_on_the_decisions_round_trip(tmp_path, capsys):
    data = ["--max_train_samples", "120", "--max_eval_samples", "40", "--label_noise", "symmetric:0.3"]
    quick = ["--num_train_epochs", "3", "--disable_tqdm", "true", "--save_strategy", "no", *data]
    first, second = tmp_path / "first", tmp_path / "second"
    train(["--output_dir", str(first), *quick])
    issues = label_issues(first)
    suspects = issues.filter(lambda suspect: suspect, input_columns="suspect")
    assert len(suspects) > 0

    main(["label-issues", str(first), "--export", str(tmp_path / "drop.csv"), "--action", "drop"])
    main(["label-issues", str(first), "--export", str(tmp_path / "relabel.csv")])  # relabel: the default
    under_half_dropped = ["--export", str(tmp_path / "half.csv"), "--cutoff", "right_under_half", "--action", "drop"]
    main(["label-issues", str(first), *under_half_dropped])
    assert "Decisions for the" in capsys.readouterr().out
    dropped = read_decisions(tmp_path / "drop.csv")
    assert sorted(dropped["row"]) == sorted(suspects["row"]) and set(dropped["action"]) == {"drop"}
    # Another cut-off exports its own suspects: right in under half (not a quarter) of their steps.
    under_half = issues.filter(lambda correctness: correctness < 0.5, input_columns="correctness")
    half = read_decisions(tmp_path / "half.csv")
    assert sorted(half["row"]) == sorted(under_half["row"]) and len(half["row"]) > len(dropped["row"])
    relabel = read_decisions(tmp_path / "relabel.csv")
    assert sorted(relabel["row"]) == sorted(suspects["row"]) and set(relabel["action"]) <= {"keep", "relabel"}
    new_label = dict(zip(suspects["row"], suspects["suggested_label"]))
    assert [new_label[row] for row, label in zip(relabel["row"], relabel["label"]) if label is not None] == [
        label for label in relabel["label"] if label is not None
    ]

    train(["--output_dir", str(second), "--decisions", str(tmp_path / "relabel.csv"), *quick])
    summary = read_parquet(second / SUMMARY_FILE)
    assert sorted(summary["row"]) == sorted(issues["row"])  # the same 120 examples
    trained_label = dict(zip(summary["row"].tolist(), summary["label"].tolist()))
    assert all(trained_label[row] == new_label[row] for row in relabel["row"])  # relabelled (or kept: the same)
    before = dict(zip(issues["row"], issues["given_label"]))
    assert all(trained_label[row] == before[row] for row in before if row not in new_label)  # the rest as they were


def test_a_bad_decisions_file_stops_the_job_before_anything_is_written(tmp_path):
    output = tmp_path / "run"
    bad = _csv(tmp_path, "row,given_label,action,label\n100000,0,drop,\n")
    with pytest.raises(
        SystemExit, match=r"^sada-hf train: .*line 2 \(row 100000\): the dataset has no such row"
    ) as exit_info:
        train(["--output_dir", str(output), "--max_train_samples", "50", "--decisions", str(bad)])
    assert "\n" not in str(exit_info.value) and not output.exists()
