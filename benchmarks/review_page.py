"""Size and cost of the review page (`sada_review.html`) for CIFAR-10's 50,000 training images.

    SADA_CIFAR10=/path/to/cifar10_jpeg_full.npz python benchmarks/review_page.py

The training statistics are synthetic (a seeded draw with a given share of suspects: the page's size does
not depend on how they were learnt), the images are the archive's real JPEGs. Prints a Markdown table: the
share of suspects, the thumbnails, the page's size (all of it, and its thumbnails) and the seconds to rank,
build and write it (the same call every run makes at the end of training).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np

from sada_hf.data import load_cifar10
from sada_hf.label_issues import rank_label_issues
from sada_hf.review import thumbnail_positions, write_review_page


def synthetic_statistics(labels: np.ndarray, rows: np.ndarray, suspect_share: float, seed: int = 0) -> dict:
    """`data_map`-style statistics: a `suspect_share` of the examples right in under a quarter of their steps
    and suggested another class, the others right most of the time."""
    rng = np.random.default_rng(seed)
    count = len(labels)
    suspect = rng.random(count) < suspect_share
    suggested = np.where(suspect, (labels + rng.integers(1, 10, count)) % 10, labels)
    correctness = np.where(suspect, rng.uniform(0, 0.24, count), rng.uniform(0.5, 1, count))
    return {
        "index": np.arange(count),
        "row": rows,
        "label": labels,
        "suggested": suggested,
        "predicted": suggested,
        "aum": np.where(suspect, rng.normal(-1, 0.7, count), rng.normal(2, 1, count)),
        "confidence": np.clip(correctness + rng.normal(0, 0.1, count), 0, 1),
        "variability": rng.uniform(0, 0.35, count),
        "correctness": correctness,
        "step_visits": np.full(count, 30),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suspect_shares", type=float, nargs="+", default=[0.0, 0.02, 0.2])
    options = parser.parse_args()
    train = load_cifar10("train")
    labels, rows = np.asarray(train["label"]), np.asarray(train["row"])
    print(f"CIFAR-10 training set: {len(train):,} images; {platform.processor() or platform.machine()}\n")
    print("| suspects | thumbnails | page (MB) | thumbnails (MB) | seconds |")
    print("|---|---|---|---|---|")
    for share in options.suspect_shares:
        stats = synthetic_statistics(labels, rows, share)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            issues = rank_label_issues(stats)
            path = write_review_page(issues, train, "image", train.features["label"].names, folder)
            seconds = time.perf_counter() - start
            size = path.stat().st_size
            page = path.read_text()
        thumbnails = len(thumbnail_positions(np.asarray(issues["suspect"])))
        start = page.index('"thumbs":[')  # the thumbnails close the JSON block
        thumbnail_bytes = page.index("</script>", start) - start
        print(
            f"| {sum(issues['suspect']):,} ({share:.0%}) | {thumbnails:,} | {size / 1e6:.2f} "
            f"| {thumbnail_bytes / 1e6:.2f} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
