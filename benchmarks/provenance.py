"""Where and with what a benchmark row was made. Runs reproduce bit for bit on the same machine and package
versions; other package versions changed the numbers once (which package was not isolated), and the same
versions on another host changed them again, so every row records the versions and the CPU that ran it."""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "transformers", "datasets", "accelerate", "pillow", "numpy")


def cpu() -> str:
    """The CPU's model name and the vector kernels torch picked for it ('AMD EPYC, AVX2'): two hosts with the
    same packages gave different numbers, and the kernels are the first suspect."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    name = next(names, platform.processor() or "unknown CPU")
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}"


def provenance() -> dict:
    """The `machine`, `cpu`, `versions` (of `PACKAGES`) and `date` fields of a results row."""
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cpu": cpu(),
        "versions": {name: version(name) for name in PACKAGES},
        "date": time.strftime("%Y-%m-%d"),
    }


def machine(row: dict) -> str:
    """A row's machine for a table's footer, with its CPU where recorded (rows from 2026-12-05 on)."""
    return f"{row['machine']} ({row['cpu']})" if "cpu" in row else row["machine"]


def provenance_differences(before: dict, after: dict) -> str:
    """What differs between where two rows were made: packages as 'torch 2.9.0 -> 2.14.1' and the CPU; 'not
    recorded' where the older row has no such field (versions before 2026-12-04, the CPU before 2026-12-05)."""
    if "versions" not in before:
        return "versions of the stored row not recorded"
    changed = [f"{name} {before['versions'].get(name)} -> {v}" for name, v in after["versions"].items()
               if before["versions"].get(name) != v]  # fmt: skip
    if "cpu" not in before:
        changed.append("CPU of the stored row not recorded")
    elif before["cpu"] != after["cpu"]:
        changed.append(f"CPU {before['cpu']} -> {after['cpu']}")
    return ", ".join(changed) or "the same versions and CPU"
