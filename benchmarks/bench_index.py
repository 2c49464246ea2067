"""What adding the index column costs on a shuffled dataset: `Dataset.add_column` (which first flattens
the indices mapping, i.e. rewrites every image) against `sada_hf.trainer.add_index_column`.

    python benchmarks/bench_index.py              # 100,000 CIFAR-10 JPEGs saved to disk, then shuffled

Prints a Markdown table: wall time and bytes written to disk by each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np

from sada_hf.data import load_cifar10
from sada_hf.trainer import add_index_column


def tree_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    options = parser.parse_args()
    images = datasets.concatenate_datasets([load_cifar10("train"), load_cifar10("test")])
    repeats = -(-options.rows // len(images))
    table = datasets.concatenate_datasets([images] * repeats).select(range(options.rows)).flatten_indices()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        table.save_to_disk(str(root / "saved"))
        saved_bytes = tree_bytes(root)
        print(
            f"# Adding an index column to {options.rows:,} shuffled CIFAR-10 JPEG rows ({saved_bytes / 2**20:,.0f} MiB on disk)\n"
        )
        print("| method | seconds | bytes written | indices mapping kept |")
        print("|---|---|---|---|")
        for name, add in (
            ("Dataset.add_column", lambda d: d.add_column("index", np.arange(len(d), dtype=np.int64))),
            ("sada_hf add_index_column", lambda d: add_index_column(d, "index")),
        ):
            shuffled = datasets.load_from_disk(str(root / "saved")).shuffle(seed=0)
            before = tree_bytes(root)
            start = time.perf_counter()
            indexed = add(shuffled)
            assert indexed[12_345]["index"] == 12_345
            seconds = time.perf_counter() - start
            written = tree_bytes(root) - before
            print(
                f"| {name} | {seconds:.2f} | {written / 2**20:,.1f} MiB | {indexed._indices is not None} |", flush=True
            )
            del indexed, shuffled
    print(f"\n(datasets {datasets.__version__}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
