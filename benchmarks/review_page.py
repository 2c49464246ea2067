"""Size and cost of the review page (`sada_review.html`) for CIFAR-10's 50,000 training images.

    SADA_CIFAR10=/path/to/cifar10_jpeg_full.npz python benchmarks/review_page.py run   # appends to the results
    python benchmarks/review_page.py table                                             # docs/review.md's table

The training statistics are synthetic (a seeded draw with a given share of suspects: the page's size does
not depend on how they were learnt), the images are the archive's real JPEGs. Per share of suspects: the
thumbnails, the page's size (all of it, and its thumbnails) and the seconds to rank, build and write it (the
same call every run makes at the end of training). `table` prints the last run's rows as Markdown.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from sada_hf.data import load_cifar10
from sada_hf.label_issues import rank_label_issues
from sada_hf.review import thumbnail_positions, write_review_page

from provenance import provenance

RESULTS = Path(__file__).parent / "results" / "review_page.jsonl"


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


def run(options: argparse.Namespace) -> None:
    """Build the page for each share of suspects and append one row per page to the results file."""
    train = load_cifar10("train")
    labels, rows = np.asarray(train["label"]), np.asarray(train["row"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for share in options.suspect_shares:
        stats = synthetic_statistics(labels, rows, share)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            issues = rank_label_issues(stats)
            path = write_review_page(issues, train, "image", train.features["label"].names, folder)
            seconds = time.perf_counter() - start
            size = path.stat().st_size
            page = path.read_text()
        begin = page.index('"thumbs":[')  # the thumbnails close the JSON block
        row = {
            "examples": len(train),
            "suspect_share": share,
            "suspects": int(sum(issues["suspect"])),
            "thumbnails": len(thumbnail_positions(np.asarray(issues["suspect"]))),
            "page_bytes": size,
            "thumbnail_bytes": page.index("</script>", begin) - begin,
            "seconds": seconds,
            **provenance(),
        }
        with RESULTS.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def table_markdown() -> str:
    """The last day's rows on the last machine (the latest per share of suspects) as a Markdown table."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    run = {
        row["suspect_share"]: row
        for row in rows
        if (row["date"], row["machine"]) == (rows[-1]["date"], rows[-1]["machine"])
    }
    lines = [
        f"{rows[-1]['examples']:,} training images; {rows[-1]['machine']}, {rows[-1]['date']}",
        "",
        "| suspects | thumbnails | page (MB) | thumbnails (MB) | seconds |",
        "|---|---|---|---|---|",
    ]
    for share, row in sorted(run.items()):
        lines.append(
            f"| {row['suspects']:,} ({share:.0%}) | {row['thumbnails']:,} | {row['page_bytes'] / 1e6:.2f} "
            f"| {row['thumbnail_bytes'] / 1e6:.2f} | {row['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--suspect_shares", type=float, nargs="+", default=[0.0, 0.02, 0.2])
    commands.add_parser("table")
    options = parser.parse_args()
    if options.command == "run":
        run(options)
    else:
        print(table_markdown())


if __name__ == "__main__":
    main()
