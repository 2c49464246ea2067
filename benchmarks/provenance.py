"""Where and with what a benchmark row was made. Runs reproduce bit for bit on the same machine and package
versions; other package versions changed the numbers once (which package was not isolated), so every row
records them."""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import version

PACKAGES = ("torch", "torchvision", "transformers", "datasets", "accelerate", "pillow", "numpy")


def provenance() -> dict:
    """The `machine`, `versions` (of `PACKAGES`) and `date` fields of a results row."""
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "versions": {name: version(name) for name in PACKAGES},
        "date": time.strftime("%Y-%m-%d"),
    }


def changed_versions(before: dict, after: dict) -> str:
    """The packages whose versions differ between two rows, as 'torch 2.9.0 -> 2.14.1'; 'not recorded' when the
    older row has none (rows before 2026-12-04)."""
    if "versions" not in before:
        return "versions of the stored row not recorded"
    changed = [f"{name} {before['versions'].get(name)} -> {v}" for name, v in after["versions"].items()
               if before["versions"].get(name) != v]  # fmt: skip
    return ", ".join(changed) or "the same versions"
