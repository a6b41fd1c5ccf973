"""Figures: a table with more bars than fit is split into panels and pages, not crammed."""

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection

from nnr_profile.reports.overhead import OVERHEAD_COLUMNS
from nnr_profile.reports.plots import (
    GPUS_PER_PANEL,
    MAX_BARS,
    PANELS_PER_PAGE,
    overhead_figures,
    save_figures,
)


def _table(models, gpus):
    rows = []
    for model in range(models):
        for gpu in range(gpus):
            row = dict.fromkeys(OVERHEAD_COLUMNS, np.nan)
            row.update(
                framework="torch",
                workload=f"model{model:02d}",
                workload_args="{}",
                batch_size=8,
                gpu_arch=f"arch{gpu}",
                gpu_name=f"GPU {gpu}",
                baseline_mode="default",
                mode="deterministic",
                overhead_pct=10.0 + model,
                ci_low_pct=5.0 + model,
                ci_high_pct=15.0 + model,
            )
            rows.append(row)
    return pd.DataFrame(rows)


def test_a_small_table_is_one_page(tmp_path):
    paths = save_figures(overhead_figures(_table(3, 2)), tmp_path / "overhead")
    assert [p.name for p in paths] == ["overhead.png", "overhead.pdf"]


def test_a_large_table_is_split_into_panels_and_pages(tmp_path):
    models, gpus = 60, 8
    figures = list(overhead_figures(_table(models, gpus)))
    panels = [ax for fig in figures for ax in fig.axes]
    assert all(len(fig.axes) <= PANELS_PER_PAGE for fig in figures)
    assert len(panels) >= models * gpus / MAX_BARS
    bars = [
        sum(len(c.get_paths()) for c in ax.collections if isinstance(c, PolyCollection))
        for ax in panels
    ]
    assert sum(bars) == models * gpus and max(bars) <= MAX_BARS
    paths = save_figures(figures, tmp_path / "overhead")
    assert paths[0].name == "overhead.pdf" and len(paths) == len(figures) + 1
    assert paths[1].name == "overhead-p01.png"


def test_one_workload_on_more_gpus_than_a_panel_holds_is_split_by_gpu(tmp_path):
    """The issue's store: one workload measured on many GPU names (2,000 there; MAX_BARS + 1
    here) crashed the figure; now each panel shows at most GPUS_PER_PANEL GPUs, one colour each,
    every GPU once, with the legend beside its panel."""
    gpus = MAX_BARS + 1
    figures = list(overhead_figures(_table(1, gpus)))
    panels = [ax for fig in figures for ax in fig.axes]
    assert len(panels) == -(-gpus // GPUS_PER_PANEL)
    assert all(len(fig.axes) <= PANELS_PER_PAGE for fig in figures)
    colours = [
        [
            tuple(face)
            for c in ax.collections
            if isinstance(c, PolyCollection)
            for face in c.get_facecolors()
        ]
        for ax in panels
    ]
    assert sum(map(len, colours)) == gpus
    assert all(len(set(faces)) == len(faces) <= GPUS_PER_PANEL for faces in colours)
    legends = [ax.get_legend() for ax in panels]
    assert sum(len(legend.get_texts()) for legend in legends) == gpus
    assert "GPUs 91-97 of 97" in panels[-1].get_title()
    paths = save_figures(figures, tmp_path / "overhead")
    assert len(paths) == len(figures) + 1
