"""The review page `sada_review.html`: one self-contained HTML file (no server, no network) that shows a run's
data map, its label-issue suspects as thumbnails with the class pairs they confuse, and lets a person mark each
example keep, drop or relabel, and export the marks as the decisions file that cleans the dataset.

The page's HTML, script and style are the templates `templates/review.{html,js,css}`; this module only
gathers what they show into one JSON block. Its size is bounded: thumbnails of the `TOP_THUMBNAILS` most
suspicious suspects and of a seeded sample of `SAMPLE_THUMBNAILS` others, and a few numbers per example."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from string import Template

import datasets
import numpy as np

from .label_issues import CUTOFF, label_issues, ranking_of
from .persistence import atomic_write

REVIEW_PAGE = "sada_review.html"
DECISIONS_FILE = "sada_decisions.csv"
TOP_THUMBNAILS = 500  # the most suspicious suspects, in ranking order
SAMPLE_THUMBNAILS = 500  # a seeded sample of the other examples, to compare the suspects with
THUMBNAIL_SIDE = 64  # pixels; CIFAR-sized images keep their 32 x 32
THUMBNAIL_QUALITY = 75  # JPEG quality: about 1 KB a CIFAR image
MAX_PAIRS = 30  # rows of the class-pair table
# Dataset Cartography's regions: "ambiguous" is the third of the examples whose gold-label probability varied
# most; of the others, "easy" were confident (mean gold-label probability >= 0.5) and "hard" were not.
REGIONS = ("easy", "ambiguous", "hard")
AMBIGUOUS_SHARE = 1 / 3
CONFIDENT = 0.5
_TEMPLATES = Path(__file__).parent / "templates"


def data_map_regions(confidence: np.ndarray, variability: np.ndarray) -> np.ndarray:
    """Each example's data-map region as an index into `REGIONS`."""
    regions = np.where(np.asarray(confidence) >= CONFIDENT, 0, 2)
    if len(variability):
        regions[np.asarray(variability) >= np.quantile(variability, 1 - AMBIGUOUS_SHARE)] = 1
    return regions


def suggested_labels(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The label the run suggests for each example of a ranking's `columns`: its `suggested_label`, or for a
    run from sada_hf < 0.5 (which has none) the class predicted at its last training step."""
    name = "suggested_label" if "suggested_label" in columns else "predicted_label"
    return np.asarray(columns[name], dtype=np.int64)


def thumbnail_positions(suspect: np.ndarray, seed: int = 0) -> np.ndarray:
    """Positions in the ranking that get a thumbnail: the first `TOP_THUMBNAILS` suspects and a seeded sample
    of `SAMPLE_THUMBNAILS` of the other examples, in ranking order."""
    suspects = np.flatnonzero(suspect)[:TOP_THUMBNAILS]
    others = np.setdiff1d(np.arange(len(suspect)), suspects)
    sample = np.random.default_rng(seed).choice(others, min(SAMPLE_THUMBNAILS, len(others)), replace=False)
    return np.sort(np.concatenate([suspects, sample])).astype(np.int64)


def thumbnail(image) -> str:
    """A small JPEG of one image cell, base64-encoded."""
    from .transform import to_rgb

    small = to_rgb(image)
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def review_page(
    issues: datasets.Dataset,
    train_dataset: datasets.Dataset,
    image_column: str,
    class_names: Sequence[str],
    title: str = "SADA review",
) -> str:
    """The page's HTML for the ranking `issues` (`rank_label_issues`) of a run whose training dataset (stored
    values, no transform; row i is the example with index i) is `train_dataset`."""
    columns = issues.with_format("numpy")[:]  # whole columns as arrays (a column of a Dataset iterates rows)
    suggested = suggested_labels(columns)
    given = np.asarray(columns["given_label"], dtype=np.int64)
    labels = np.concatenate([given, suggested])
    if len(labels) and labels.max() >= len(class_names):
        raise ValueError(
            f"The run has class {labels.max()} but {len(class_names)} class names were given: pass one name per "
            "class (the model's id2label, or the label column's ClassLabel)."
        )
    suspect = np.asarray(columns["suspect"], dtype=bool)
    with_thumbnail = thumbnail_positions(suspect)
    images = train_dataset.select(np.asarray(columns["index"])[with_thumbnail])[image_column] if len(issues) else []
    thumb = np.full(len(issues), -1, dtype=np.int64)
    thumb[with_thumbnail] = np.arange(len(with_thumbnail))
    confidence = np.asarray(columns["confidence"], dtype=np.float64)
    variability = np.asarray(columns["variability"], dtype=np.float64)
    rows = np.asarray(columns["row" if "row" in issues.column_names else "index"], dtype=np.int64)
    examples = {
        "row": rows,
        "given": given,
        "suggested": suggested,
        "confidence": np.round(1000 * confidence),  # per mille: short numbers keep a 50,000-example page small
        "variability": np.round(1000 * variability),
        "correctness": np.round(100 * np.asarray(columns["correctness"], dtype=np.float64)),
        "aum": np.round(np.asarray(columns["aum"], dtype=np.float64), 2),
        "suspect": suspect.astype(np.int64),
        "region": data_map_regions(confidence, variability),
        "thumb": thumb,
    }
    has_ids = "id" in issues.column_names
    if has_ids:
        examples["id"] = np.asarray(columns["id"], dtype=object)
    data = {
        "key": _fingerprint(rows, given),
        "classes": [str(name) for name in class_names],
        "has_ids": has_ids,
        "cutoff": CUTOFF,
        "ranking": ranking_of(issues.column_names),
        "regions": list(REGIONS),
        "max_pairs": MAX_PAIRS,
        "decisions_file": DECISIONS_FILE,
        "examples": {name: values.tolist() for name, values in examples.items()},
        "thumbs": [thumbnail(image) for image in images],
    }
    block = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")  # no "</script>" inside the block
    return Template((_TEMPLATES / "review.html").read_text()).substitute(
        title=html.escape(title),
        style=(_TEMPLATES / "review.css").read_text(),
        script=(_TEMPLATES / "review.js").read_text(),
        data=block,
    )


def write_review_page(
    issues: datasets.Dataset,
    train_dataset: datasets.Dataset,
    image_column: str,
    class_names: Sequence[str],
    output_dir: str | os.PathLike,
) -> Path:
    """Write `output_dir/sada_review.html` (atomically) and return its path."""
    path = Path(output_dir) / REVIEW_PAGE
    page = review_page(issues, train_dataset, image_column, class_names, f"SADA review: {Path(output_dir).name}")
    atomic_write(path, lambda name: Path(name).write_text(page, encoding="utf-8"))
    return path


def _fingerprint(rows: np.ndarray, given: np.ndarray) -> str:
    """Names the examples under review, so that marks kept in the browser follow the same examples only."""
    order = np.argsort(rows, kind="stable")  # the same examples give the same name in any ranking order
    return hashlib.sha1(rows[order].tobytes() + given[order].tobytes()).hexdigest()[:16]


def write_run_review_page(
    output_dir: str | os.PathLike,
    train_dataset: datasets.Dataset,
    image_column: str,
    label_column: str,
    class_names: Sequence[str],
) -> Path:
    """Write the review page of the run in `output_dir` from its training dataset loaded again (the command
    `sada-hf review`). Raises `ValueError` naming the fix when the dataset is not the run's."""
    issues = label_issues(output_dir)
    columns = issues.with_format("numpy")[:]
    positions = np.asarray(columns["index"], dtype=np.int64)
    stored = train_dataset.select_columns([c for c in (label_column, "row") if c in train_dataset.column_names])
    if len(positions) and positions.max() >= len(stored):
        raise ValueError(
            f"The run trained on at least {positions.max() + 1} examples, the dataset given has {len(stored)}: pass "
            "the data options (and --seed) the run was trained with."
        )
    subset = stored.select(positions).with_format("numpy")[:]
    same = np.array_equal(subset[label_column], columns["given_label"])
    if same and "row" in columns and "row" in subset:
        same = np.array_equal(subset["row"], columns["row"])
    if not same:
        raise ValueError(
            f"The dataset given is not the one the run in {output_dir} trained on (its rows or labels differ): pass "
            "the data options (and --seed) the run was trained with."
        )
    return write_review_page(issues, train_dataset, image_column, class_names, output_dir)
