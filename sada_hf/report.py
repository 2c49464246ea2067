"""What a SADA run leaves in its output folder, drawn from its state and its training dataset: the
per-example summary, the plots (strengths over training, strength per class, data map), the label-issue
contact sheet (with thumbnails of the top suspects for sheets drawn later), the review page, and the SADA
section of the model card."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from .card import update_model_card
from .data import class_names
from .dynamics import with_probe_statistics
from .label_issues import (
    MOST_DRAWN,
    SHEET,
    TOP_SUSPECTS,
    contact_sheet,
    keep_images,
    rank_label_issues,
    ranking_of,
)
from .plots import (
    CLASS_STRENGTHS_PLOT,
    DATA_MAP_PLOT,
    STRENGTHS_PLOT,
    plot_class_strengths,
    plot_data_map,
    plot_strength_history,
)
from .review import REVIEW_PAGE, write_review_page
from .state import SADAState

PLOTS = (STRENGTHS_PLOT, CLASS_STRENGTHS_PLOT, DATA_MAP_PLOT, SHEET)


class Report:
    """The files of one run. `train_dataset` is the training dataset without its transform (row i is the
    example with index i); class names come from `label_feature` (a `ClassLabel`), else `id2label`."""

    def __init__(
        self,
        state: SADAState,
        train_dataset: datasets.Dataset,
        image_column: str,
        label_feature: Any = None,
        id2label: dict | None = None,
    ) -> None:
        self.state = state
        self.train_dataset = train_dataset
        self.image_column = image_column
        self.class_names = class_names(state.num_labels, label_feature, id2label)

    def statistics(self, output_dir: str | os.PathLike) -> dict[str, np.ndarray]:
        """The run's per-example summary, with its probes' statistics when it wrote probes to `output_dir`."""
        return with_probe_statistics(self.state.summary(), output_dir)

    def write_all(self, output_dir: str | os.PathLike) -> list[str]:
        """The summary (`sada_examples.parquet`, `sada_config.json`), every plot and the review page
        (`sada_review.html`); returns the plots' names."""
        self.state.save_summary(output_dir)
        plots = self.draw_plots(output_dir)
        self.write_review_page(output_dir)
        return plots

    def write_review_page(self, output_dir: str | os.PathLike) -> Path:
        """The page to review the label-issue suspects in a browser (`sada_hf.review`); returns its path."""
        issues = rank_label_issues(self.statistics(output_dir))
        return write_review_page(issues, self.train_dataset, self.image_column, self.class_names, output_dir)

    def draw_plots(self, output_dir: str | os.PathLike) -> list[str]:
        """Draw the plots there is something to draw for into `output_dir`; returns their file names."""
        os.makedirs(output_dir, exist_ok=True)
        state, written = self.state, []
        if state.history:
            plot_strength_history(state.history, Path(output_dir, STRENGTHS_PLOT))
            written.append(STRENGTHS_PLOT)
        plot_class_strengths(
            state.strengths.numpy(), state.labels.numpy(), self.class_names, Path(output_dir, CLASS_STRENGTHS_PLOT)
        )
        written.append(CLASS_STRENGTHS_PLOT)
        statistics = self.statistics(output_dir)
        if not (statistics["step_visits"] > 0).any():
            return written
        plot_data_map(statistics, Path(output_dir, DATA_MAP_PLOT))
        issues = rank_label_issues(statistics)
        kept = issues.select(range(min(MOST_DRAWN, len(issues))))
        images = list(self.train_dataset.select(kept["index"])[self.image_column])  # only the kept ones are read
        keep_images(output_dir, kept, images)  # for sheets of other sizes, drawn without the dataset
        top = kept.select(range(min(TOP_SUSPECTS, len(kept))))
        contact_sheet(images[: len(top)], top, self.class_names, Path(output_dir, SHEET), ranking_of(statistics))
        return written + [DATA_MAP_PLOT, SHEET]

    def update_model_card(self, output_dir: str | os.PathLike) -> None:
        """Add the SADA section to `output_dir/README.md`, with the plots drawn at the end of training (drawn
        now if they are not there)."""
        plots = [name for name in PLOTS if Path(output_dir, name).is_file()] or self.draw_plots(output_dir)
        issues = rank_label_issues(self.statistics(output_dir))
        review = Path(output_dir, REVIEW_PAGE).is_file()
        update_model_card(Path(output_dir, "README.md"), self.state, plots, issues, review)
