"""Hugging Face's own Trainer tests, run as they are and with `SADATrainer` in place of `Trainer`.

    git clone --branch v5.24.0 --depth 1 https://github.com/huggingface/transformers /tmp/transformers
    python benchmarks/upstream_trainer_tests.py /tmp/transformers

Runs the data-handling, checkpointing and callback test modules of a transformers checkout (check out
the tag of the installed release) twice: once stock, once with `transformers.Trainer` replaced by
`sada_hf.SADATrainer` before any test module imports it (the pytest plugin `swap_trainer_plugin.py`
beside this file). Prints the counts of both runs and the tests whose outcome differs. The test files
are never copied into this repository.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

FILES = (
    "tests/trainer/test_trainer_data.py",
    "tests/trainer/test_trainer_checkpointing.py",
    "tests/trainer/test_trainer_callback.py",
)
_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)|^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED)")


def run(checkout: Path, swap: bool) -> tuple[str, dict[str, str]]:
    """The summary line and the outcome of each test of one pytest run in `checkout`."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *FILES]
    if swap:
        environment["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), environment.get("PYTHONPATH", "")])
        command[3:3] = ["-p", "swap_trainer_plugin"]
    result = subprocess.run(command, cwd=checkout, env=environment, capture_output=True, text=True)
    lines = result.stdout.splitlines()
    outcomes = {}
    for line in lines:
        match = _OUTCOME.match(line)
        if match:
            outcome, name = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
            outcomes[name] = outcome
    summary = next((line for line in reversed(lines) if " in " in line and ("passed" in line or "failed" in line)), "")
    return summary.strip("= "), outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a transformers checkout at the installed release's tag")
    options = parser.parse_args()
    missing = [name for name in FILES if not (options.checkout / name).is_file()]
    if missing:
        raise SystemExit(f"{options.checkout} lacks {missing}: clone transformers at the installed release's tag.")
    stock, stock_outcomes = run(options.checkout, swap=False)
    swapped, swapped_outcomes = run(options.checkout, swap=True)
    print("| Trainer class | result |")
    print("|---|---|")
    print(f"| transformers.Trainer | {stock} |")
    print(f"| sada_hf.SADATrainer | {swapped} |")
    differ = sorted(n for n in stock_outcomes if swapped_outcomes.get(n) != stock_outcomes[n])
    for name in differ:
        print(f"- {name}: {stock_outcomes[name]} with Trainer, {swapped_outcomes.get(name)} with SADATrainer")


if __name__ == "__main__":
    main()
