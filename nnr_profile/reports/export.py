"""Table export: CSV, Markdown and LaTeX from report DataFrames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DISPLAY_COLUMNS = {
    "framework": "framework",
    "workload": "workload",
    "gpu_arch": "arch",
    "gpu_name": "device name",
    "baseline_mode": "baseline",
    "mode": "mode",
    "baseline_median_ms": "baseline median (ms)",
    "median_ms": "median (ms)",
    "overhead_pct": "overhead (%)",
    "ci": "95% CI (%)",
    "n_trials": "trials",
    "noisy": "noisy",
}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The overhead table shaped for a paper: rounded figures and a 'low to high' CI column."""
    shown = table.copy()
    shown["ci"] = [
        f"[{low:+.1f}, {high:+.1f}]"
        for low, high in zip(shown["ci_low_pct"], shown["ci_high_pct"], strict=False)
    ]
    shown["overhead_pct"] = shown["overhead_pct"].map(lambda v: f"{v:+.1f}")
    for column in ("baseline_median_ms", "median_ms"):
        shown[column] = shown[column].map(lambda v: f"{v:.3f}")
    shown["noisy"] = shown["noisy"].map(lambda v: "yes" if v else "")
    return shown[list(DISPLAY_COLUMNS)].rename(columns=DISPLAY_COLUMNS)


def write_tables(table: pd.DataFrame, stem: Path) -> list[Path]:
    """Write `stem`.csv (all columns, full precision), `stem`.md and `stem`.tex (display form)."""
    csv_path, md_path, tex_path = (stem.with_suffix(s) for s in (".csv", ".md", ".tex"))
    table.to_csv(csv_path, index=False)
    shown = display_table(table)
    md_path.write_text(shown.to_markdown(index=False) + "\n", encoding="utf-8")
    tex_path.write_text(shown.to_latex(index=False, escape=True), encoding="utf-8")
    return [csv_path, md_path, tex_path]
