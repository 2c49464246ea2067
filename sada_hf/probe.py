"""The probe: a no-grad, eval-mode forward over this process's training examples through the evaluation
transform (no augmentation), whose logits measure each example rather than the view it was trained on.

It must leave training exactly as it was: no random number is drawn from the global generators (the
DataLoader gets a private one), BatchNorm statistics and dropout are untouched (eval mode, then the
model's mode is restored), and the optimizer and the step counters are never seen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import datasets
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler


class _PixelBatches:
    """Picklable: batch indices -> the evaluation transform's `pixel_values` for those rows."""

    def __init__(self, dataset: datasets.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, rows: list[int]) -> torch.Tensor:
        return self.dataset[rows]["pixel_values"]


class Probe:
    """Probes the examples at `indices` of `dataset` (unformatted, raw columns) through `eval_transform`.

    Args:
        dataset: the training dataset without its transform.
        indices: the dataset positions this process probes, in order.
        eval_transform: decode -> resize -> `pixel_values`, no augmentation.
        batch_size, num_workers, pin_memory, persistent_workers, multiprocessing_context, prefetch_factor:
            the DataLoader settings (SADATrainer passes the evaluation ones of `TrainingArguments`).
    """

    def __init__(
        self,
        dataset: datasets.Dataset,
        indices: np.ndarray,
        eval_transform: Callable[[dict], dict],
        batch_size: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        multiprocessing_context: Any = None,
        prefetch_factor: int | None = None,
    ) -> None:
        self.indices = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        rows = dataset.select(self.indices.tolist()).with_transform(eval_transform)
        batches = BatchSampler(SequentialSampler(range(len(rows))), batch_size, drop_last=False)
        self.loader = DataLoader(
            _PixelBatches(rows),
            batch_size=None,  # the sampler yields whole batches; the transform runs once per batch
            sampler=batches,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers and num_workers > 0,
            multiprocessing_context=multiprocessing_context if num_workers > 0 else None,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            generator=torch.Generator(),  # iterating a DataLoader draws a seed: never from the global RNG
        )

    def run(self, model: torch.nn.Module, device: torch.device, autocast: Callable[[], Any] | None = None):
        """Logits (float32, on the CPU, one row per probed example in `indices` order) of `model` in eval
        mode, without gradients, under `autocast` (the training's mixed precision)."""
        was_training = model.training
        model.eval()
        chunks = []
        try:
            with torch.no_grad(), autocast() if autocast is not None else contextlib.nullcontext():
                for pixel_values in self.loader:
                    outputs = model(pixel_values=pixel_values.to(device, non_blocking=True))
                    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
                    chunks.append(logits.detach().to(torch.float32).cpu())
        finally:
            model.train(was_training)
        logits = torch.cat(chunks) if chunks else torch.empty(0, 0)
        return self.indices, logits
