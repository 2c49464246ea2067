"""A pretrained ViT made offline, for the fine-tune benchmark: no checkpoint can be downloaded here, so
one is trained once on the six animal classes of CIFAR-10 and cached outside the repository.

    python benchmarks/pretrain.py          # trains once (about 35 minutes on 2 CPU cores), then reuses it
    python benchmarks/pretrain.py table    # the recipe, accuracy and time of each pretraining recorded

The model is a `ViTConfig` ViT (patch 4 at 32 px, 6 layers of width 128: about 1.2M parameters, sized so
that 16 epochs over the 30,000 animal training images fit in about 35 minutes on 2 CPU cores), trained
through `sada-hf train` with TrivialAugment and saved with `save_pretrained` plus its image processor.
The fine-tune benchmark (`accuracy.py --model vit_finetune`) loads it the way a user loads a Hub
checkpoint: `--model_name_or_path <folder> --ignore_mismatched_sizes` (a new 4-class head for the
vehicles). The folder is keyed by the recipe and the seed, and written under a temporary name then
renamed, so a folder that exists is complete. Deterministic for a seed: every draw is seeded
(weights, sampler, augmentation keyed by seed, epoch and index).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from provenance import provenance

RESULTS = Path(__file__).parent / "results" / "pretrain.jsonl"
CACHE = Path(os.environ.get("SADA_CACHE", Path.home() / ".cache" / "sada_hf")) / "pretrained"
RECORD = "pretrain_record.json"

ANIMALS = ("bird", "cat", "deer", "dog", "frog", "horse")
VEHICLES = ("airplane", "automobile", "ship", "truck")
# The architecture, also what the fine-tune benchmark trains from scratch as its regime check.
ARCHITECTURE = [
    "--model_type", "vit",
    "--config_overrides", "hidden_size=128,num_hidden_layers=6,num_attention_heads=4,intermediate_size=512,patch_size=4",
]  # fmt: skip
RECIPE = [
    "--builtin_dataset", "cifar10",
    "--classes", *ANIMALS,
    "--strategy", "trivialaugment",
    "--num_train_epochs", "16",
    "--learning_rate", "1e-3",
    "--weight_decay", "0.05",
    "--warmup_steps", "0.05",
    "--lr_scheduler_type", "cosine",
    "--per_device_train_batch_size", "128",
    "--per_device_eval_batch_size", "500",
    "--eval_strategy", "no",
    "--save_strategy", "no",
    "--logging_strategy", "epoch",
    "--disable_tqdm", "true",
    "--report_to", "none",
    "--dataloader_num_workers", "1",
    "--dataloader_persistent_workers", "true",
]  # fmt: skip


def recipe(seed: int) -> list[str]:
    """The `sada-hf train` arguments of the pretraining, but the output folder."""
    return [*ARCHITECTURE, *RECIPE, "--seed", str(seed)]


def folder(seed: int = 0) -> Path:
    """Where the model of this recipe and seed is cached."""
    digest = hashlib.sha256(json.dumps(recipe(seed)).encode()).hexdigest()[:12]
    return CACHE / f"vit-animals-seed{seed}-{digest}"


@functools.cache
def weights_digest(seed: int = 0) -> str:
    """The first 12 hex digits of the SHA-256 of the pretrained weights: the same recipe made again on other
    package versions gives another model, and fine-tune rows of different models must not be paired."""
    return _digest(pretrained(seed))


def _digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:12]


def typed(argv: list[str]) -> str:
    """The `sada-hf train` command line as a user types it: a path under the home folder is written from
    `~`, so the recorded command runs on any machine."""
    home = Path.home()
    words = []
    for word in argv:
        path = Path(word)
        if path.is_absolute() and path.is_relative_to(home):
            words.append("~/" + shlex.quote(str(path.relative_to(home))))
        else:
            words.append(shlex.quote(word))
    return "sada-hf train " + " ".join(words)


def pretrained(seed: int = 0) -> Path:
    """The folder of the pretrained model (`from_pretrained` loads it), trained first if it is not cached."""
    target = folder(seed)
    if (target / RECORD).is_file():
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [*recipe(seed), "--output_dir", str(staging)]
    print(f"Pretraining (cached afterwards in {target}):\n{typed(argv)}", flush=True)
    start = time.time()
    process = subprocess.run(
        [sys.executable, "-m", "sada_hf.cli", "train", *argv], env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    if process.returncode != 0:
        raise SystemExit(f"pretraining failed (exit code {process.returncode}); nothing was cached")
    minutes = (time.time() - start) / 60
    evaluation = json.loads((staging / "eval_results.json").read_text())
    record = {
        "seed": seed,
        "classes": list(ANIMALS),
        "accuracy": evaluation["eval_accuracy"],  # on the 6,000 animal test images
        "minutes": minutes,
        "parameters": _parameters(staging),
        "weights": _digest(staging),
        "command": typed(recipe(seed)),
        "folder": target.name,
        **provenance(),
    }
    (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    staging.rename(target)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(f"animal test accuracy {record['accuracy']:.4f}, {minutes:.1f} min, cached in {target}", flush=True)
    return target


def _parameters(path: Path) -> int:
    from transformers import AutoModelForImageClassification

    return sum(p.numel() for p in AutoModelForImageClassification.from_pretrained(path).parameters())


def table_markdown() -> str:
    """The recorded pretrainings (recipe, accuracy on the animal test images, time, package versions) as
    Markdown: a pretraining made again on other package versions need not give the same model."""
    lines = [
        "| seed | parameters | animal test accuracy (%) | minutes | machine | torch / Pillow | weights | date |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()] if RESULTS.exists() else []
    for row in rows:
        versions = row.get("versions")
        made_with = f"{versions['torch']} / {versions['pillow']}" if versions else "not recorded"
        lines.append(
            f"| {row['seed']} | {row['parameters'] / 1e6:.2f}M | {100 * row['accuracy']:.2f} | {row['minutes']:.1f} "
            f"| {row['machine']} | {made_with} | {row.get('weights', 'not recorded')} | {row['date']} |"
        )
    if rows:
        lines += ["", f"Command: `{rows[-1]['command']} --output_dir <cache folder>`"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["run", "table"], default="run")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    if options.command == "table":
        print(table_markdown())
    else:
        print(pretrained(options.seed))


if __name__ == "__main__":
    main()
