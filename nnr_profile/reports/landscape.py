"""Files for a loss landscape: its tables as CSV and its contour and surface figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nnr_profile.reports.plots import save_figure
from nnr_profile.reports.variability_plots import (
    landscape_contour_figure,
    landscape_surface_figure,
)


def write_landscape(surface: pd.DataFrame, points: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """landscape.csv, landscape_points.csv, landscape_contour.{png,pdf}, _surface.{png,pdf}.

    `surface` has columns alpha, beta, loss; `points` label, alpha, beta, loss.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "landscape.csv", out / "landscape_points.csv"]
    surface.to_csv(files[0], index=False)
    points.to_csv(files[1], index=False)
    files += save_figure(landscape_contour_figure(surface, points), out / "landscape_contour")
    files += save_figure(landscape_surface_figure(surface), out / "landscape_surface")
    return files
