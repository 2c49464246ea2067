"""Logit adjustment for long-tailed data (Menon et al. 2021, "Long-tail learning via logit adjustment"):
train on `logits + tau * log(class prior)`, predict with the plain logits. Pure torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_log_prior(labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """log of each class's share of `labels` (float32; -inf for a class with no example)."""
    counts = torch.bincount(labels.long(), minlength=num_labels).to(torch.float64)
    return torch.log(counts / counts.sum()).to(torch.float32)


def logit_adjusted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    log_prior: torch.Tensor,
    tau: float,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Cross-entropy of `logits + tau * log_prior` (in float32), labels -100 ignored; the sum over
    `num_items_in_batch` when given (the examples of a whole gradient-accumulation cycle, as Trainer passes
    it), else the mean. With tau 0 it is the loss an HF classification model computes itself."""
    adjusted = logits.float() + tau * log_prior.to(logits.device) if tau else logits.float()
    if num_items_in_batch is None:
        return F.cross_entropy(adjusted, labels, ignore_index=-100)
    loss = F.cross_entropy(adjusted, labels, ignore_index=-100, reduction="sum")
    return loss / torch.as_tensor(num_items_in_batch, device=loss.device)
