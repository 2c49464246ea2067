"""What the sharded store saves: memory per process and one epoch's store traffic, against the replicated store.

    python benchmarks/store_shards.py run --processes 1 2 4   # appends to results/store_shards.jsonl
    python benchmarks/store_shards.py table
    python benchmarks/store_shards.py memory                  # bytes per process at scale, from the code

The store alone (no model): W CPU processes on gloo, N examples, K classes, each process observing its
N / W examples of an epoch in batches of B random logits, then one publication. Three ways:
- replicated (sada_hf 0.2): every process keeps all N rows; each step all-gathers every process's logits
  and every process applies all of them;
- sharded, gather-then-filter: the same gather, each process keeps its own rows;
- sharded, all-to-all (what SADATrainer does, `sada_hf.sharding.route_to_owners`): each batch's rows go
  only to the process that owns them (sizes exchanged first).
Timed: the second epoch (the first has no KL to compute), traffic plus store updates, then the publication
(every process's V, visits and certainty put together). The random logits are drawn outside the timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sada_hf import SADAConfig, SADAState
from sada_hf.sharding import Shard, route_to_owners

RESULTS = Path(__file__).parent / "results" / "store_shards.jsonl"
MODES = ("replicated", "sharded-gather", "sharded-all-to-all")


def all_gather(tensor: torch.Tensor) -> torch.Tensor:
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def gather_rows(indices: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's rows (equal batch sizes here, so no padding is needed)."""
    return all_gather(indices), all_gather(logits)


def worker(rank: int, world_size: int, options: argparse.Namespace, mode: str, port: int, queue) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    n, k, batch = options.examples, options.labels, options.batch_size
    config = SADAConfig(augmentation_seed=0, normalization="rank")
    if mode == "replicated":
        state = SADAState(torch.arange(n) % k, k, config)
    else:
        state = SADAState(torch.arange(n) % k, k, config, Shard(n, rank, world_size), all_gather)
    exchange = route_to_owners if mode == "sharded-all-to-all" else gather_rows
    generator = torch.Generator().manual_seed(rank)
    seconds = {}
    for epoch in range(2):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        mine = order[rank::world_size][: (n // world_size // batch) * batch]  # equal full batches everywhere
        state.begin_epoch()
        traffic, received = 0.0, 0
        for indices in mine.split(batch):
            logits = torch.randn(len(indices), k, generator=generator) * 3
            start = time.perf_counter()
            rows = exchange(indices, logits)
            state.observe(*rows)
            traffic += time.perf_counter() - start
            received += rows[0].numel() * 8 + rows[1].numel() * 4
        dist.barrier()
        start = time.perf_counter()
        state.end_epoch()
        seconds = {"epoch_traffic_s": traffic, "publication_s": time.perf_counter() - start, "received": received}
    queue.put(
        {
            "rank": rank,
            **seconds,
            "store_bytes": state.store.nbytes,
            "shared_bytes": state.shared_nbytes,
            "visits": int(state.visits.sum()),
        }
    )
    dist.destroy_process_group()


def run(options: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    context = mp.get_context("spawn")
    port = 29600
    for world_size in options.processes:
        for mode in MODES if world_size > 1 else ("replicated",):
            queue = context.Queue()
            port += 1
            processes = [
                context.Process(target=worker, args=(rank, world_size, options, mode, port, queue))
                for rank in range(world_size)
            ]
            for process in processes:
                process.start()
            ranks = sorted((queue.get() for _ in processes), key=lambda r: r["rank"])
            for process in processes:
                process.join()
                if process.exitcode != 0:
                    raise RuntimeError(f"{mode} with {world_size} processes failed (exit code {process.exitcode}).")
            row = {
                "processes": world_size,
                "mode": "one process" if world_size == 1 else mode,
                "examples": options.examples,
                "labels": options.labels,
                "batch_size": options.batch_size,
                "store_bytes_per_process": max(r["store_bytes"] for r in ranks),
                "shared_bytes_per_process": ranks[0]["shared_bytes"],
                "received_bytes_per_process": max(r["received"] for r in ranks),  # one epoch's rows
                "epoch_traffic_s": max(r["epoch_traffic_s"] for r in ranks),  # the slowest process sets the pace
                "publication_s": max(r["publication_s"] for r in ranks),
                "visits": ranks[0]["visits"],  # the same in every mode: each example recorded once per epoch
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                "date": time.strftime("%Y-%m-%d"),
                "command": f"python benchmarks/store_shards.py run --processes {world_size} --examples "
                f"{options.examples} --labels {options.labels} --batch-size {options.batch_size}",
            }
            with RESULTS.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def table(options: argparse.Namespace) -> None:
    print(table_markdown())


def table_markdown() -> str:
    """The store-traffic table of the results file, with the setting and machine it ran on."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    lines = [
        f"N = {rows[-1]['examples']:,} examples, K = {rows[-1]['labels']} classes, {rows[-1]['machine']}",
        "",
        "| processes | store | store MiB / process | per-example vectors MiB / process | rows received MiB / epoch "
        "| epoch traffic + updates s | publication s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['processes']} | {row['mode']} | {row['store_bytes_per_process'] / 2**20:,.0f} | "
            f"{row['shared_bytes_per_process'] / 2**20:.1f} | {row['received_bytes_per_process'] / 2**20:,.0f} | "
            f"{row['epoch_traffic_s']:.2f} | {row['publication_s']:.2f} |"
        )
    return "\n".join(lines)


DATASETS = {"CIFAR-10": (50_000, 10), "ImageNet-1k": (1_281_167, 1000), "ImageNet-21k": (14_197_122, 21_841)}


def memory(options: argparse.Namespace) -> None:
    print(memory_markdown())


def memory_markdown() -> str:
    """Per-process bytes for well-known datasets, measured on small stores (bytes per owned row and per
    example of the vectors every process keeps are exact, so they extrapolate)."""
    lines = [
        "| dataset | N | K | store dtype | W = 1 | W = 8 | W = 64 | + per-example vectors on every process |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name, (n, k) in DATASETS.items():
        for dtype in ("float32", "float16"):
            config = SADAConfig(augmentation_seed=0, store_dtype=dtype)
            one, two = (SADAState(torch.arange(size) % k, k, config) for size in (1, 2))
            rows = [state.store.nbytes + state.margins.nbytes for state in (one, two)]  # influence and margins
            per_row, fixed = rows[1] - rows[0], 2 * rows[0] - rows[1]
            per_example = two.shared_nbytes - one.shared_nbytes
            cells = [_gib(fixed + per_row * Shard(n, 0, w).size) for w in (1, 8, 64)]
            lines.append(f"| {name} | {n:,} | {k:,} | {dtype} | {' | '.join(cells)} | {_gib(per_example * n)} |")
    return "\n".join(lines)


def _gib(size: float) -> str:
    return f"{size / 2**30:,.1f} GiB" if size >= 2**30 else f"{size / 2**20:,.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    runner.add_argument("--examples", type=int, default=200_000)
    runner.add_argument("--labels", type=int, default=1000)
    runner.add_argument("--batch-size", type=int, default=256, help="per process")
    commands.add_parser("table")
    commands.add_parser("memory")
    options = parser.parse_args()
    {"run": run, "table": table, "memory": memory}[options.command](options)


if __name__ == "__main__":
    main()
