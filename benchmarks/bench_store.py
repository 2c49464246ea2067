"""Cost of SADA's per-step bookkeeping and the memory of its store, against N and K.

    python benchmarks/bench_store.py            # CIFAR-10/100 and ImageNet-1k sizes, batch 256

Prints a Markdown table: bytes per example, microseconds per training step (one `SADAState.observe`
of a batch of logits at steady state, visits >= 2 so the KL, window and EMA all run), and the
epoch-end cost; then the arithmetic for ImageNet-21k.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from sada_hf import SADAConfig, SADAState

SIZES = [("CIFAR-10", 50_000, 10), ("CIFAR-100", 50_000, 100), ("ImageNet-1k", 1_281_167, 1000)]


def bytes_per_example(state: SADAState) -> float:
    tensors = list(state.store.state_dict().values()) + [state.schedule.strengths]
    return sum(t.numel() * t.element_size() for t in tensors) / state.num_examples


def time_steps(state: SADAState, batch: int, steps: int, generator: torch.Generator) -> list[float]:
    state.store.visits.fill_(3)  # steady state: every update computes KL, window variance and EMA
    state.store.variance.fill_(1.0)
    timings = []
    for step in range(steps):
        indices = torch.randint(0, state.num_examples, (batch,), generator=generator)
        logits = torch.randn(batch, state.num_labels, generator=generator) * 3
        state.schedule.set_epoch(step + 10)  # a new epoch per step: no update is skipped as a repeat
        start = time.perf_counter()
        state.observe(indices, logits)
        timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    generator = torch.Generator().manual_seed(0)

    print(
        f"# SADA store: batch {options.batch}, {options.steps} steps, {options.threads} threads, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}\n"
    )
    print(
        "| dataset | N | K | store dtype | bytes / example | store total | us / step (median) | us / step (p90) | epoch end (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, k in SIZES:
        for dtype in ("float32", "float16"):
            state = SADAState(torch.arange(n) % k, k, SADAConfig(augmentation_seed=0, store_dtype=dtype))
            timings = sorted(time_steps(state, options.batch, options.steps, generator)[20:])
            state.store.variance.copy_(torch.rand(n, generator=generator))
            start = time.perf_counter()
            state.end_epoch()
            epoch_end = time.perf_counter() - start
            per_example = bytes_per_example(state)
            print(
                f"| {name} | {n:,} | {k:,} | {dtype} | {per_example:,.0f} | {per_example * n / 2**20:,.0f} MiB | "
                f"{statistics.median(timings) * 1e6:,.0f} | {timings[int(0.9 * len(timings))] * 1e6:,.0f} | "
                f"{epoch_end * 1e3:,.0f} |"
            )
            del state

    n, k, window = 14_197_122, 21_841, 10
    for dtype, width in (("float32", 4), ("float16", 2)):
        total = n * (k * width + 4 * window + 4 + 4 + 4 + 4)
        print(
            f"\nImageNet-21k ({n:,} x {k:,}, {dtype}): {k * width + 4 * window + 16:,} bytes / example, "
            f"{total / 2**30:,.0f} GiB per process"
        )


if __name__ == "__main__":
    main()
