"""The SADA section of a model card: configuration, op space, per-epoch strength statistics,
the final distribution and the plots, appended to the card `Trainer.create_model_card` writes."""

from __future__ import annotations

import os
from collections.abc import Sequence

import datasets
from huggingface_hub import ModelCard

from .dynamics import DYNAMICS_DIR
from .label_issues import SHEET
from .ops import MAGNITUDE_OPS
from .plots import DATA_MAP_PLOT
from .state import SADAState

TAG = "sada"
_SECTION_START = "<!-- sada_hf: start -->"
_SECTION_END = "<!-- sada_hf: end -->"
_FROM_SCRATCH_WRONG = "This model is a fine-tuned version of [](https://huggingface.co/) on"
_FROM_SCRATCH = "This model was trained from scratch on"


def update_model_card(
    path: str | os.PathLike, state: SADAState, plots: Sequence[str] = (), issues: datasets.Dataset | None = None
) -> None:
    """Add the `sada` tag and the SADA section to the card at `path` (replacing an earlier section);
    `issues` is the label-issue ranking (`rank_label_issues`) when probes left dynamics.

    A model built from a config has an empty `_name_or_path`, which the upstream card renders as a
    fine-tuned version of an empty link; such a card says "trained from scratch" instead.
    """
    card = ModelCard.load(path)
    tags = list(card.data.tags or [])
    if TAG not in tags:
        card.data.tags = tags + [TAG]
    text = card.text.replace(_FROM_SCRATCH_WRONG, _FROM_SCRATCH)
    if _SECTION_START in text:
        text = text[: text.index(_SECTION_START)] + text[text.index(_SECTION_END) + len(_SECTION_END) :]
    card.text = text.rstrip() + "\n\n" + sada_section(state, plots, issues) + "\n"
    card.save(path)


def sada_section(state: SADAState, plots: Sequence[str] = (), issues: datasets.Dataset | None = None) -> str:
    """Markdown describing how SADA augmented this model's training data (and, given the label-issue
    ranking and with the contact sheet among the plots, its label-issue suspects)."""
    config = state.config
    if config.influence == "probe":
        source = (
            "re-estimated after each probe (a no-grad, eval-mode forward over every training example without "
            f"augmentation, every {config.probe_every:g} epoch(s)) from the variance of its influence (the KL "
            "divergence between its predictive distributions at successive probes). "
        )
    else:
        source = (
            "re-estimated at each epoch end from the variance of its influence (the KL divergence between its "
            "predictive distributions at successive training steps, on the augmented views trained on). "
        )
    lines = [
        _SECTION_START,
        "## SADA augmentation",
        "",
        'Trained with SADA (Sample-Aware Dynamic Augmentation; "On-the-fly data augmentation via gradient-guided '
        'and sample-aware influence estimation") through sada_hf: every training example '
        "had its own augmentation strength, "
        + source
        + (
            "Stable examples were augmented strongly, unstable ones mildly."
            if config.direction == "stable_strong"
            else "Unstable examples were augmented strongly, stable ones mildly (the inverted direction)."
        ),
        "",
        "### Configuration",
        "",
        "| setting | value |",
        "|---|---|",
        f"| strategy | `{config.strategy}` |",
        f"| influence | `{config.influence}`"
        + (f", every {config.probe_every:g} epoch(s)" if config.influence == "probe" else "")
        + " |",
        f"| window (L) | {config.window} |",
        f"| EMA decay (beta) | {config.decay} |",
        f"| normalization | `{config.normalization}` |",
        f"| direction | `{config.direction}` |",
        f"| warm-up strength | {'uniform per visit (TrivialAugment)' if config.warmup_strength is None else config.warmup_strength} |",
        f"| store dtype | `{config.store_dtype}` |",
        f"| augmentation seed | {config.augmentation_seed} |",
        f"| training examples | {state.num_examples:,} |",
        "",
        "### Augmentation space",
        "",
        f"One op drawn uniformly per example and visit from {len(config.ops)}: "
        + ", ".join(f"`{op}`" for op in config.ops)
        + ". Magnitude at strength 1: "
        + ", ".join(f"{op} {config.magnitudes[op]:g}" for op in MAGNITUDE_OPS if op in config.ops)
        + " (enhance factors 1 +/- m, degrees, fraction of the side, shear, solarize fraction, posterize bits removed).",
        "",
        "### Strengths as published",
        "",
        "| epoch | in warm-up | mean | std | q25 | median | q75 | non-finite logits skipped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in state.history:
        stats = (
            entry.strength_mean,
            entry.strength_std,
            entry.strength_q25,
            entry.strength_median,
            entry.strength_q75,
        )
        cells = " | ".join("-" if v is None else f"{v:.3f}" for v in stats)
        lines.append(f"| {entry.epoch:g} | {entry.warmup_fraction:.0%} | {cells} | {entry.nonfinite_skipped} |")
    if state.history:
        last = state.history[-1]
        lines += [
            "",
            f"After the last publication, {1 - last.warmup_fraction:.0%} of the examples had a SADA strength; the "
            f"expected strength of a visit was {last.expected_strength:.3f}.",
        ]
    if DATA_MAP_PLOT in plots:
        lines += [
            "",
            f"The data map below ({DATA_MAP_PLOT}) places every training example by its mean gold-label confidence "
            f"and its variability across probes; the per-probe rows are in `{DYNAMICS_DIR}/` (Parquet: "
            f'`datasets.load_dataset("parquet", data_files="{DYNAMICS_DIR}/*.parquet")`). Examples with low '
            "confidence and low variability are the first to check for label errors.",
        ]
    if SHEET in plots and issues is not None:
        suspects = sum(issues["suspect"])
        lines += [
            "",
            "### Label-issue suspects",
            "",
            f"{suspects:,} of {len(issues):,} training examples ({suspects / len(issues):.1%}) have a negative area "
            "under the margin across the probes (their given label was, on average, not the model's top class). "
            f"The most suspicious are shown in [{SHEET}]({SHEET}); the full ranking: `sada-hf label-issues "
            "OUTPUT_DIR` or `SADATrainer.label_issues()`.",
        ]
    if plots:
        lines += [""] + [f"![{os.path.splitext(name)[0]}]({name})" for name in plots]
    lines.append(_SECTION_END)
    return "\n".join(lines)
