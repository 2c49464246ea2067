"""Local image-classification data as `datasets.Dataset`s with an `Image` feature, so that tests,
benchmarks and the command line use the same code path as a Hub or `imagefolder` dataset; and the job's
data options (`DataArguments`) with the splits they select."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from .decisions import apply_decisions
from .identity import ROW_COLUMN, with_row_column
from .transform import CROPS

BUILTIN_DATASETS = ("digits", "cifar10")
CIFAR10_ENV = "SADA_CIFAR10"
_CIFAR10_FILE = "cifar10_jpeg_full.npz"


@dataclass
class DataArguments:
    """Which images to train and evaluate on, and how to augment them."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A dataset on the Hub (or a local directory laid out like one)."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration name."})
    train_dir: str | None = field(default=None, metadata={"help": "An imagefolder of training images (class/image)."})
    validation_dir: str | None = field(default=None, metadata={"help": "An imagefolder of evaluation images."})
    builtin_dataset: str = field(
        default="digits",
        metadata={
            "help": "Used when no dataset is named: 'digits' (scikit-learn's, bundled) or 'cifar10' (the JPEG "
            "archive at $SADA_CIFAR10 or ../shared/data).",
            "choices": list(BUILTIN_DATASETS),
        },
    )
    examples_per_class: int | None = field(
        default=None, metadata={"help": "cifar10: training images per class (a seeded stratified subset)."}
    )
    imbalance_ratio: float | None = field(
        default=None,
        metadata={
            "help": "cifar10: a long-tailed training set (CIFAR-10-LT): --examples_per_class images (default "
            "1000) of class 0 down to that many / ratio of class 9, exponentially (100: 1000 ... 10)."
        },
    )
    classes: list[str] | None = field(
        default=None,
        metadata={
            "help": "cifar10: keep only these classes, relabelled 0..K-1 in the order given (e.g. --classes airplane "
            "automobile ship truck); with --imbalance_ratio the tail follows that order."
        },
    )
    label_noise: str | None = field(
        default=None,
        metadata={
            "help": "Flip a seeded share of the training labels to test label-error finding: 'symmetric:0.2' (a "
            "fifth to another class, uniformly) or 'asymmetric:0.2' (cifar10: a fifth of truck, bird, deer, cat, dog "
            "to automobile, airplane, horse, dog, cat). The labels before flipping go to a `clean_label` column."
        },
    )
    decisions: str | None = field(
        default=None,
        metadata={
            "help": "A decisions file (CSV or Parquet: row, id, given_label, action, label; docs/usage.md) to apply to "
            "the training split before training: its drops left out, its relabels given their new label "
            "(`sada-hf label-issues RUN --export FILE` writes one). Applied after --max_train_samples and "
            "--label_noise, by each example's row; a file that does not fit the data is refused before training."
        },
    )
    train_val_split: float = field(
        default=0.15, metadata={"help": "Fraction of the training split held out when there is no evaluation split."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep this many training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep this many evaluation images."})
    image_column_name: str = field(default="image", metadata={"help": "Column holding the images."})
    label_column_name: str = field(default="label", metadata={"help": "Column holding the class ids."})
    id_column_name: str | None = field(
        default=None,
        metadata={
            "help": "Column naming each training example (a file name, a key): label issues, the per-example "
            "summary and decisions files carry it as `id` (default: the image's file path for an imagefolder)."
        },
    )
    crop: str | None = field(
        default=None,
        metadata={
            "help": "Base crop before the SADA op (default: random_resized_crop for a checkpoint of 224 pixels or "
            "more, as in Hugging Face's example; random_crop otherwise, as on CIFAR).",
            "choices": list(CROPS),
        },
    )
    horizontal_flip: bool | None = field(
        default=None, metadata={"help": "Flip with probability 1/2 (default: on, off for digits)."}
    )

    def __post_init__(self) -> None:
        if self.dataset_name and (self.train_dir or self.validation_dir):
            raise ValueError("Give either --dataset_name or --train_dir/--validation_dir, not both.")
        if self.classes is not None and not (self.uses_builtin and self.builtin_dataset == "cifar10"):
            raise ValueError("--classes selects classes of --builtin_dataset cifar10; other datasets keep theirs.")
        if self.label_noise is not None:
            parse_label_noise(self.label_noise)  # a clear error now, not after the data is loaded

    @property
    def uses_builtin(self) -> bool:
        return self.dataset_name is None and self.train_dir is None


def find_cifar10() -> Path:
    """Path of the full CIFAR-10 JPEG archive: `$SADA_CIFAR10` when it is set (and then nowhere else), else
    `../shared/data/` from the working directory or from this package's checkout."""
    configured = os.environ.get(CIFAR10_ENV)
    if configured:
        # Only the named file: falling back to another copy would hide a wrong path.
        if not Path(configured).is_file():
            raise FileNotFoundError(
                f"{CIFAR10_ENV} is set to {configured!r}, but there is no file there. Point {CIFAR10_ENV} at "
                f"the CIFAR-10 JPEG archive ({_CIFAR10_FILE}), or unset it to look in ../shared/data/."
            )
        return Path(configured)
    candidates = [
        Path.cwd().parent / "shared" / "data" / _CIFAR10_FILE,
        Path(__file__).resolve().parents[2] / "shared" / "data" / _CIFAR10_FILE,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"CIFAR-10 archive {_CIFAR10_FILE} not found (looked at {[str(c) for c in candidates]}). The benchmarks "
        f"and `--builtin_dataset cifar10` need the full CIFAR-10 JPEG archive ({_CIFAR10_FILE}, format in "
        f"docs/development.md); set {CIFAR10_ENV}=/path/to/{_CIFAR10_FILE}."
    )


def long_tail_counts(head: int, num_classes: int, imbalance_ratio: float) -> list[int]:
    """Images per class of an exponential long-tail profile (CIFAR-10-LT, Cao et al. 2019): class c keeps
    int(head * imbalance_ratio ** (-c / (num_classes - 1))), from `head` down to head / imbalance_ratio."""
    return [int(head * imbalance_ratio ** (-c / (num_classes - 1))) for c in range(num_classes)]


def load_cifar10(
    split: str = "train",
    examples_per_class: int | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    imbalance_ratio: float | None = None,
    classes: Sequence[str] | None = None,
) -> datasets.Dataset:
    """CIFAR-10 from the JPEG archive as a `Dataset` with `image` (the original JPEG bytes), `label`
    (`ClassLabel`) and `row` (the image's row in the archive's split: its identity in label issues and
    decisions files) columns.

    The archive is sorted by class, so a subset takes `examples_per_class` images of every class
    (a seeded draw) and the rows are shuffled with the same seed. With `imbalance_ratio` the subset
    is long-tailed: `examples_per_class` (default 1,000) images of the first class down to that many
    divided by the ratio for the last (`long_tail_counts`; ratio 100 gives CIFAR-10-LT's 1,000 ... 10,
    2,478 images). `classes` keeps only the named classes, relabelled 0..K-1 in the order given (so the
    long tail follows that order): two disjoint class sets make a pretraining and a fine-tuning task.
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}.")
    with np.load(path if path is not None else find_cifar10()) as archive:
        jpeg, offsets = archive[f"{split}_jpeg"], archive[f"{split}_offsets"]
        labels = archive[f"y_{split}"].astype(np.int64)
        class_names = [str(name) for name in archive["class_names"]]
    if classes is not None:
        labels, class_names = _keep_classes(labels, class_names, list(classes))

    rng = np.random.default_rng(seed)
    if imbalance_ratio is not None and not imbalance_ratio >= 1:
        raise ValueError(f"`imbalance_ratio` must be >= 1 (head / tail images), got {imbalance_ratio!r}.")
    if imbalance_ratio is not None and examples_per_class is None:
        examples_per_class = 1000
    if examples_per_class is None:
        rows = rng.permutation(np.flatnonzero(labels >= 0))
    else:
        per_class = [np.flatnonzero(labels == c) for c in range(len(class_names))]
        smallest = min(len(rows) for rows in per_class)
        if not 0 < examples_per_class <= smallest:
            raise ValueError(
                f"`examples_per_class` must be in 1..{smallest} for split {split!r}, got {examples_per_class}."
            )
        counts = [examples_per_class] * len(class_names)
        if imbalance_ratio is not None:
            counts = long_tail_counts(examples_per_class, len(class_names), imbalance_ratio)
        rows = np.concatenate([rng.choice(rows, count, replace=False) for rows, count in zip(per_class, counts)])
        rows = rng.permutation(rows)

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=class_names),
            ROW_COLUMN: datasets.Value("int64"),
        }
    )
    images = [{"bytes": jpeg[offsets[i] : offsets[i + 1]].tobytes(), "path": None} for i in rows]
    return datasets.Dataset.from_dict({"image": images, "label": labels[rows], ROW_COLUMN: rows}, features=features)


def _keep_classes(labels: np.ndarray, names: list[str], keep: list[str]) -> tuple[np.ndarray, list[str]]:
    """Labels relabelled to positions in `keep` (-1 for the classes left out), and the names kept."""
    unknown = [name for name in keep if name not in names]
    if unknown or not keep or len(set(keep)) != len(keep):
        raise ValueError(f"`classes` must name distinct CIFAR-10 classes among {names}, got {keep}.")
    relabel = np.full(len(names), -1, dtype=np.int64)
    relabel[[names.index(name) for name in keep]] = np.arange(len(keep))
    return relabel[labels], keep


# Asymmetric label noise on CIFAR-10 (Patrini et al. 2017): each class flips to its look-alike.
CIFAR10_LOOK_ALIKES = {"truck": "automobile", "bird": "airplane", "deer": "horse", "cat": "dog", "dog": "cat"}
LABEL_NOISE_KINDS = ("symmetric", "asymmetric")


def parse_label_noise(spec: str) -> tuple[str, float]:
    """'KIND:RATE' (e.g. 'symmetric:0.2') as (kind, rate); `ValueError` naming the format otherwise."""
    kind, _, rate = spec.partition(":")
    try:
        if kind in LABEL_NOISE_KINDS and 0 < float(rate) < 1:
            return kind, float(rate)
    except ValueError:
        pass
    raise ValueError(
        f"--label_noise must be KIND:RATE with KIND in {LABEL_NOISE_KINDS} and 0 < RATE < 1 (e.g. 'symmetric:0.2'), "
        f"got {spec!r}."
    )


def with_label_noise(
    dataset: datasets.Dataset, kind: str, rate: float, seed: int = 0, label_column: str = "label"
) -> datasets.Dataset:
    """`dataset` with a seeded share `rate` of its labels flipped, and the labels as they were in a new column
    `clean_label` (to measure label-error finders). 'symmetric': `rate` of all examples get another class,
    drawn uniformly; 'asymmetric': `rate` of the examples of each CIFAR-10 class with a look-alike get it
    (truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog)."""
    if kind not in LABEL_NOISE_KINDS or not 0 < rate < 1:
        raise ValueError(
            f"Label noise must be one of {LABEL_NOISE_KINDS} with a rate in (0, 1), got {kind!r}, {rate!r}."
        )
    feature = dataset.features[label_column]
    names = list(feature.names)
    clean = np.asarray(dataset[label_column], dtype=np.int64)
    noisy = clean.copy()
    rng = np.random.default_rng([seed, 7919])
    if kind == "symmetric":
        flipped = rng.choice(len(clean), round(rate * len(clean)), replace=False)
        noisy[flipped] = (clean[flipped] + rng.integers(1, len(names), size=len(flipped))) % len(names)
    else:
        if not set(CIFAR10_LOOK_ALIKES) <= set(names):
            raise ValueError(f"Asymmetric label noise needs CIFAR-10's classes; this dataset has {names}.")
        for source, target in CIFAR10_LOOK_ALIKES.items():
            rows = np.flatnonzero(clean == names.index(source))
            noisy[rng.choice(rows, round(rate * len(rows)), replace=False)] = names.index(target)
    dataset = dataset.add_column("clean_label", clean).cast_column("clean_label", feature)
    return dataset.remove_columns(label_column).add_column(label_column, noisy).cast_column(label_column, feature)


def load_digits(validation_fraction: float = 0.2, seed: int = 0) -> datasets.DatasetDict:
    """scikit-learn's bundled handwritten digits (1,797 8x8 grayscale images, 10 classes) as
    `train` / `validation` splits (stratified, seeded) with `image`, `label` and `row` (the image's row in
    scikit-learn's set) columns. Offline."""
    from PIL import Image
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.round(bunch.images * (255 / 16)).astype(np.uint8)  # 0..16 -> 0..255
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    validation = np.concatenate(
        [
            rng.choice(rows, round(len(rows) * validation_fraction), replace=False)
            for rows in (np.flatnonzero(labels == c) for c in range(10))
        ]
    )
    train = np.setdiff1d(np.arange(len(labels)), validation)
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=[str(d) for d in range(10)]),
            ROW_COLUMN: datasets.Value("int64"),
        }
    )

    def split(rows: np.ndarray) -> datasets.Dataset:
        rows = rng.permutation(rows)
        images = [Image.fromarray(pixels[i]) for i in rows]  # 2-D uint8: mode L
        columns = {"image": images, "label": labels[rows], ROW_COLUMN: rows}
        return datasets.Dataset.from_dict(columns, features=features)

    return datasets.DatasetDict(train=split(train), validation=split(validation))


def load_splits(
    data: DataArguments, seed: int = 0, cache_dir: str | None = None, token: str | None = None
) -> datasets.DatasetDict:
    """A `DatasetDict` with `train` and `validation` splits, from the Hub, an imagefolder or a built-in set. The
    training split carries each example's row in the dataset as loaded (`row`, before any held-out split,
    subset or shuffle here; the built-in sets' own rows), and `data.decisions` applied (by those rows, last)."""
    if data.dataset_name is not None:
        splits = datasets.load_dataset(data.dataset_name, data.dataset_config_name, cache_dir=cache_dir, token=token)
        splits["train"] = with_row_column(splits["train"])
    elif data.train_dir is not None:
        files = {"train": os.path.join(data.train_dir, "**")}
        if data.validation_dir is not None:
            files["validation"] = os.path.join(data.validation_dir, "**")
        splits = datasets.load_dataset("imagefolder", data_files=files, cache_dir=cache_dir)
        splits["train"] = with_row_column(splits["train"])
    elif data.builtin_dataset == "cifar10":
        path = find_cifar10()
        splits = datasets.DatasetDict(
            train=load_cifar10(
                "train",
                data.examples_per_class,
                seed=seed,
                path=path,
                imbalance_ratio=data.imbalance_ratio,
                classes=data.classes,
            ),
            validation=load_cifar10("test", seed=seed, path=path, classes=data.classes),
        )
    else:
        splits = load_digits(seed=seed)

    if "validation" not in splits:
        held_out = next((name for name in ("test", "valid", "val") if name in splits), None)
        if held_out is not None:
            splits["validation"] = splits.pop(held_out)
        else:
            parts = splits["train"].train_test_split(data.train_val_split, seed=seed)
            splits["train"], splits["validation"] = parts["train"], parts["test"]
    for name, limit in (("train", data.max_train_samples), ("validation", data.max_eval_samples)):
        if limit is not None:
            splits[name] = splits[name].shuffle(seed=seed).select(range(min(limit, len(splits[name]))))
    if data.label_noise is not None:
        kind, rate = parse_label_noise(data.label_noise)
        splits["train"] = with_label_noise(splits["train"], kind, rate, seed, data.label_column_name)
    if data.decisions is not None:
        splits["train"] = apply_decisions(
            splits["train"], data.decisions, data.label_column_name, data.image_column_name, data.id_column_name
        )
    return splits


def label_names(dataset: datasets.Dataset, label_column: str) -> list[str]:
    """Class names from a `ClassLabel` column, else the ids 0..max as strings."""
    feature = dataset.features[label_column]
    num_labels = (
        feature.num_classes if isinstance(feature, datasets.ClassLabel) else max(dataset.unique(label_column)) + 1
    )
    return class_names(int(num_labels), feature)


def class_names(num_labels: int, feature: object = None, id2label: dict | None = None) -> list[str]:
    """Names of classes 0..num_labels-1: a `datasets.ClassLabel` feature's, else a model config's
    `id2label` (keys int or str), else the ids as strings."""
    if isinstance(feature, datasets.ClassLabel) and feature.num_classes == num_labels:
        return list(feature.names)
    names = {str(key): value for key, value in (id2label or {}).items()}
    return [names.get(str(i), str(i)) for i in range(num_labels)]
