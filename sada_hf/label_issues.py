"""Label-error suspects from a run's own training dynamics (no extra training, no extra pass): every
training example ranked by its area under the margin (AUM: the mean, over its visits, of its given
label's logit minus the largest other logit), with Dataset Cartography's confidence, variability and
correctness beside it, a cut-off that flags the likely errors, and a contact sheet of the top suspects."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Container, Sequence
from pathlib import Path

import datasets
import numpy as np

from .dynamics import data_map
from .plots import save_figure
from .strengths import DROP_LABEL, KEEP_LABEL

SHEET = "sada_label_issues.png"
TOP_SUSPECTS = 32  # drawn on the contact sheet and shown on the model card
# Thumbnails of the top suspects a run keeps, so that `sada-hf label-issues RUN --top K` can draw K of them
# without the dataset (an imagefolder run's files serve for any K); also the most one sheet draws.
SHEET_IMAGES = "sada_label_issues_images.parquet"
MOST_DRAWN = 256
_THUMBNAIL = 128  # pixels, the longer side: the sheet draws each image about 1.6 inches wide at 110 dpi


@dataclasses.dataclass(frozen=True)
class _Ranking:
    """How suspicious each example is (lower: more likely mislabelled), from the statistics named in `reads`
    (declared so that a ranking a run cannot feed is refused with the fix, not a KeyError)."""

    reads: tuple[str, ...]
    score: Callable[[dict[str, np.ndarray]], np.ndarray]

    def __call__(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        return self.score(stats)


# By where the margins come from: the training steps (every run) or the probes (clean views; runs with probes).
RANKINGS: dict[str, _Ranking] = {
    "aum": _Ranking(("aum",), lambda stats: stats["aum"]),
    "probe_aum": _Ranking(("probe_aum",), lambda stats: stats["probe_aum"]),
    "aum_and_probe_aum": _Ranking(  # both, equally
        ("aum", "probe_aum"), lambda stats: _rank(stats["aum"]) + _rank(stats["probe_aum"])
    ),
}
# Which examples to flag as suspects.
CUTOFFS: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {
    "aum_below_0": lambda stats: stats["aum"] < 0,  # on average, the given label was not the top class
    "aum_below_0_and_wrong_last": lambda stats: (stats["aum"] < 0) & (stats["predicted"] != stats["label"]),
    "right_under_half": lambda stats: stats["correctness"] < 0.5,  # right in fewer than half its visits
    "right_under_quarter": lambda stats: stats["correctness"] < 0.25,
    "never_right": lambda stats: stats["correctness"] == 0,
    "wrong_last": lambda stats: stats["predicted"] != stats["label"],  # wrong at its last training step
}
# The rules used, chosen by rule 6 of docs/results.md on 20% symmetric noise (benchmarks/label_errors.py measures
# every one): the training steps' AUM ranks best with or without probes (AUROC 0.930; the probes' 0.921), and
# "right in under a quarter of the visits" has the best F1 (0.65; AUM < 0 flags 2.8 examples per flipped label).
RANKING_WITHOUT_PROBES = "aum"
RANKING_WITH_PROBES = "aum"
CUTOFF = "right_under_quarter"


def check_cutoff(cutoff: str) -> str:
    """`cutoff` if it names a rule of `CUTOFFS`; else a `ValueError` that lists them."""
    if cutoff not in CUTOFFS:
        raise ValueError(f"Unknown cut-off {cutoff!r}: choose one of {', '.join(CUTOFFS)} (default {CUTOFF}).")
    return cutoff


def label_overrides(stats: dict[str, np.ndarray], action: str, cutoff: str = CUTOFF) -> np.ndarray:
    """What a run that acts on label issues trains each example on (`StrengthSchedule.label_overrides`):
    `KEEP_LABEL` unless the `cutoff` flags it; a suspect gets `DROP_LABEL` ('drop') or its suggested label,
    the class its training steps predicted most ('relabel'). `stats` are the training-step statistics
    against the given labels."""
    suspects = CUTOFFS[check_cutoff(cutoff)](stats)
    overrides = np.full(len(suspects), KEEP_LABEL, dtype=np.int32)
    if action == "drop":
        overrides[suspects] = DROP_LABEL
    elif action == "relabel":
        overrides[suspects] = stats["suggested"][suspects]
    else:
        raise ValueError(f"`action` must be 'drop' or 'relabel', got {action!r}.")
    return overrides


def _rank(values: np.ndarray) -> np.ndarray:
    """Ranks of `values` in [0, 1] (NaN stays NaN)."""
    ranks = np.full(len(values), np.nan)
    defined = ~np.isnan(values)
    ranks[defined] = np.argsort(np.argsort(values[defined], kind="stable"), kind="stable") / max(defined.sum() - 1, 1)
    return ranks


def ranking_of(stats: Container[str], ranking: str | None = None) -> str:
    """The ranking `rank_label_issues` uses for statistics with these names: `ranking` if given (checked
    against the statistics the run has), else the rule's choice with or without probes."""
    if ranking is None:
        return RANKING_WITH_PROBES if "probe_aum" in stats else RANKING_WITHOUT_PROBES
    if ranking not in RANKINGS:
        raise ValueError(f"Unknown ranking {ranking!r}: choose one of {', '.join(RANKINGS)}.")
    missing = [name for name in RANKINGS[ranking].reads if name not in stats]
    if missing:  # every run records the training steps' statistics: what a run lacks comes from the probes
        raise ValueError(
            f"Ranking {ranking!r} needs the probes' dynamics ({', '.join(missing)}), and this run had no probes: "
            "train with influence='probe', or rank by 'aum' (the training steps' margins, in every run)."
        )
    return ranking


def label_issues(output_dir: str | os.PathLike, ranking: str | None = None, cutoff: str = CUTOFF) -> datasets.Dataset:
    """Every training example of the run in `output_dir`, most suspicious first (`rank_label_issues`).

    Raises `FileNotFoundError` naming the fix if `output_dir` holds no SADA run, `ValueError` if its
    files are damaged or `ranking` or `cutoff` does not fit the run."""
    return rank_label_issues(data_map(output_dir), ranking, cutoff)


def rank_label_issues(
    stats: dict[str, np.ndarray], ranking: str | None = None, cutoff: str = CUTOFF
) -> datasets.Dataset:
    """The examples of `data_map`-style statistics, most suspicious first (by `RANKINGS[ranking_of(stats,
    ranking)]`: the rule's choice unless `ranking` names another), with `index` (the row in the training
    dataset), `row` (the row in the dataset the user passed, before the job's subsetting and shuffling) and
    `id` (`identity.example_identity`; runs from sada_hf < 0.5 have neither), `given_label`,
    `suggested_label` (the class its training steps predicted most, later visits weighing more: `MarginStore`'s
    vote), `predicted_label` (at the last step), `aum`, `confidence`, `variability`, `correctness`, `step_visits`, the probes' `probe_aum` and `probes` when the run had
    probes, the ranking's `score` and `suspect` (flagged by `CUTOFFS[cutoff]`). Examples never visited are left out."""
    suspect = CUTOFFS[check_cutoff(cutoff)](stats)
    visited = stats["step_visits"] > 0
    score = RANKINGS[ranking_of(stats, ranking)](stats)[visited]
    order = np.argsort(score, kind="stable")
    columns = {
        "index": "index",
        "row": "row",
        "id": "id",
        "given_label": "label",
        "suggested_label": "suggested",
        "predicted_label": "predicted",
        "aum": "aum",
        "confidence": "confidence",
        "variability": "variability",
        "correctness": "correctness",
        "step_visits": "step_visits",
        "probe_aum": "probe_aum",
        "probes": "probes",
    }
    ranked = {name: stats[source][visited][order] for name, source in columns.items() if source in stats}
    ranked["score"] = score[order]
    ranked["suspect"] = suspect[visited][order]
    return datasets.Dataset.from_dict(ranked)


def contact_sheet(
    images: Sequence,
    issues: datasets.Dataset,
    class_names: Sequence[str],
    path: str | os.PathLike,
    ranking: str,
    columns: int = 8,
) -> None:
    """A PNG grid of the `issues` rows given (typically the top `TOP_SUSPECTS`), each image titled with its
    row, given label and suggested label, under a title naming the `ranking` that ordered them. `images[j]` is
    the image of row j of `issues` (a PIL image or an image cell)."""
    from matplotlib.figure import Figure

    from .transform import to_rgb

    count = len(issues)
    if count == 0:
        raise ValueError("No suspects to show: `issues` is empty.")
    rows = -(-count // columns)
    figure = Figure(figsize=(1.6 * min(columns, count), 1.9 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, min(columns, count))).ravel()
    for position, axis in enumerate(axes):
        axis.set_axis_off()
        if position >= count:
            continue
        row = issues[position]
        axis.imshow(to_rgb(images[position]))
        given, suggested = class_names[row["given_label"]], class_names[row["suggested_label"]]
        axis.set_title(f"row {row['row']}\ngiven: {given}\nsuggested: {suggested}", fontsize=7)
    figure.suptitle(f"Label-issue suspects, most suspicious first (ranking: {ranking})", fontsize=9)
    save_figure(figure, path, dpi=110)


def keep_images(output_dir: str | os.PathLike, issues: datasets.Dataset, images: Sequence) -> None:
    """Write PNG thumbnails of `images` (`images[j]`: the image of row j of `issues`) with their `index` to
    `SHEET_IMAGES` in `output_dir`, for contact sheets drawn after training."""
    import io

    from .persistence import write_parquet
    from .transform import to_rgb

    encoded = []
    for image in images:
        thumbnail, buffer = to_rgb(image).copy(), io.BytesIO()
        thumbnail.thumbnail((_THUMBNAIL, _THUMBNAIL))
        thumbnail.save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    columns = {"index": np.asarray(issues["index"], dtype=np.int64), "image": np.asarray(encoded, dtype=object)}
    write_parquet(Path(output_dir, SHEET_IMAGES), columns)


def images_of(output_dir: str | os.PathLike, issues: datasets.Dataset) -> list:
    """The image of each row of `issues` for a contact sheet: the run's kept thumbnail (`keep_images`), else its
    file when its `id` is an image path (imagefolder). `ValueError` naming the fix if some row has neither."""
    from .persistence import read_parquet

    path = Path(output_dir, SHEET_IMAGES)
    kept = read_parquet(path) if path.is_file() else {"index": [], "image": []}
    thumbnails = dict(zip(np.asarray(kept["index"]).tolist(), kept["image"]))
    ids = issues["id"] if "id" in issues.column_names else [None] * len(issues)
    images, missing = [], 0
    for index, example_id in zip(issues["index"], ids):
        if index in thumbnails:
            images.append({"bytes": thumbnails[index], "path": None})
        elif example_id is not None and Path(example_id).is_file():
            images.append({"bytes": None, "path": example_id})
        else:
            missing += 1
    if missing:
        raise ValueError(
            f"{missing} of these {len(issues)} suspects have no image here: the run kept thumbnails of its top "
            f"{len(thumbnails)} by the default ranking ({SHEET_IMAGES}), and their ids are not image files. Ask "
            f"for fewer (--top), rank by the default, or look them up by row in your dataset."
        )
    return images
