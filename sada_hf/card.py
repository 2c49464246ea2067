"""The SADA section of a model card, rendered from `templates/card_section.md` and appended to the card
`Trainer.create_model_card` writes: configuration, op space, the strengths at each publication, the
training dynamics and label-issue suspects, and the plots."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from string import Template

import datasets
from huggingface_hub import ModelCard

from .config import SADAConfig
from .dynamics import DYNAMICS_DIR
from .label_issues import CUTOFF, SHEET
from .ops import MAGNITUDE_OPS
from .persistence import atomic_write
from .review import REVIEW_PAGE
from .state import SADAState, StrengthStatistics
from .strategies import STRATEGIES

TAG = "sada"
_TEMPLATE = Path(__file__).parent / "templates" / "card_section.md"
_SECTION_START = "<!-- sada_hf: start -->"
_SECTION_END = "<!-- sada_hf: end -->"
_FROM_SCRATCH_WRONG = "This model is a fine-tuned version of [](https://huggingface.co/) on"
_FROM_SCRATCH = "This model was trained from scratch on"


def update_model_card(
    path: str | os.PathLike,
    state: SADAState,
    plots: Sequence[str] = (),
    issues: datasets.Dataset | None = None,
    review: bool = False,
) -> None:
    """Add the `sada` tag and the SADA section to the card at `path` (replacing an earlier section);
    `issues` is the label-issue ranking (`rank_label_issues`), `review` whether the review page lies beside it.

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
    card.text = text.rstrip() + "\n\n" + sada_section(state, plots, issues, review) + "\n"
    atomic_write(Path(path), lambda temporary: card.save(temporary))


def sada_section(
    state: SADAState, plots: Sequence[str] = (), issues: datasets.Dataset | None = None, review: bool = False
) -> str:
    """Markdown describing how SADA augmented this model's training data and what it learned about the
    examples (with the label-issue ranking, its suspects; with `review`, a link to the review page)."""
    config = state.config
    values = {
        "strategy": config.strategy,
        "strategy_help": STRATEGIES[config.strategy].help,
        "source": _signal_source(config),
        "config_rows": "\n".join(
            f"| `{f.name}` | {_cell(getattr(config, f.name))} |" for f in dataclasses.fields(config)
        ),
        "num_examples": f"{state.num_examples:,}",
        "num_ops": len(config.ops),
        "ops": ", ".join(f"`{op}`" for op in config.ops),
        "magnitudes": ", ".join(f"{op} {config.magnitudes[op]:g}" for op in MAGNITUDE_OPS if op in config.ops),
        "publication_rows": "\n".join(_publication_row(entry) for entry in state.history),
        "last_publication": _last_publication(state.history),
        "probe_dynamics": (
            f"The probes' per-example rows are in `{DYNAMICS_DIR}/` (Parquet)." if config.influence == "probe" else ""
        ),
        "label_issues": _label_issues(issues, SHEET in plots, review),
        "plots": "\n".join(f"![{os.path.splitext(name)[0]}]({name})" for name in plots),
    }
    return Template(_TEMPLATE.read_text()).substitute(values).strip()


def _signal_source(config: SADAConfig) -> str:
    """How the strengths were re-estimated, for the strategies that re-estimate them."""
    if config.strategy in ("margin", "margin_shuffled"):
        where = (
            "at each publication from the rank of its area under the margin (the mean, over its training steps "
            "so far, of its label's logit minus the largest other logit)"
        )
        easy, hard = "High-margin (easy)", "low-margin (hard)"
    elif config.strategy in ("sada", "sada_shuffled") and config.influence == "probe":
        where = (
            f"after each probe (a no-grad, eval-mode forward over every training example without augmentation, "
            f"every {config.probe_every:g} epoch(s)) from the variance of its influence (the KL divergence between "
            "its predictive distributions at successive probes)"
        )
        easy, hard = "Stable", "unstable"
    elif config.strategy in ("sada", "sada_shuffled"):
        where = (
            "at each epoch end from the variance of its influence (the KL divergence between its predictive "
            "distributions at successive training steps, on the augmented views trained on)"
        )
        easy, hard = "Stable", "unstable"
    else:
        return ""
    strong, mild = (easy, hard) if config.direction == "stable_strong" else (hard.capitalize(), easy.lower())
    shuffled = " (then permuted across examples: a control)" if config.strategy.endswith("_shuffled") else ""
    return (
        f"Every training example's strength was re-estimated {where}{shuffled}. {strong} examples were augmented "
        f"strongly, {mild} ones mildly."
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"`{json.dumps(value) if isinstance(value, (list, dict)) else value}`"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _publication_row(entry: StrengthStatistics) -> str:
    quartiles = (
        entry.strength_mean,
        entry.strength_std,
        entry.strength_q25,
        entry.strength_median,
        entry.strength_q75,
    )
    cells = " | ".join(_number(v) for v in quartiles)
    right_wrong = f"{_number(entry.strength_mean_right)} / {_number(entry.strength_mean_wrong)}"
    return (
        f"| {entry.epoch:g} | {entry.warmup_fraction:.0%} | {cells} | {right_wrong} | "
        f"{_number(entry.rank_correlation)} | {entry.nonfinite_skipped} |"
    )


def _last_publication(history: Sequence[StrengthStatistics]) -> str:
    if not history:
        return ""
    last = history[-1]
    return (
        f"After the last publication, {1 - last.warmup_fraction:.0%} of the examples had a SADA strength; the "
        f"expected strength of a visit was {last.expected_strength:.3f}."
    )


def _label_issues(issues: datasets.Dataset | None, with_sheet: bool, with_review: bool) -> str:
    if issues is None or len(issues) == 0:
        return ""
    suspects = sum(issues["suspect"])
    sheet = f" The most suspicious are shown in [{SHEET}]({SHEET})." if with_sheet else ""
    review = (
        f" Review them in [{REVIEW_PAGE}]({REVIEW_PAGE}) (download it and open it in a browser, offline): the data "
        "map, the suspects as thumbnails, the class pairs they confuse; mark each keep, drop or relabel and export "
        "the decisions file."
        if with_review
        else ""
    )
    return (
        f"{suspects:,} of {len(issues):,} training examples ({suspects / len(issues):.1%}) are label-issue suspects "
        f"(rule `{CUTOFF}`).{sheet}{review} The full ranking: `sada-hf label-issues OUTPUT_DIR` or "
        "`SADATrainer.label_issues()`."
    )
