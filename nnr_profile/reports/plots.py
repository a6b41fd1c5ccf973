"""Figures from report tables (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def overhead_figure(table: pd.DataFrame) -> plt.Figure:
    """Grouped bars of overhead % per workload, one bar per GPU architecture, 95 % CI whiskers.

    One panel per (framework, baseline -> mode) comparison; `table` is `overhead_table`'s output.
    """
    panels = list(table.groupby(["framework", "baseline_mode", "mode"], sort=True))
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(max(6.0, 1.2 * table["workload"].nunique() + 3), 3.2 * len(panels)),
        squeeze=False,
    )
    for ax, ((framework, baseline, mode), panel) in zip(axes[:, 0], panels, strict=False):
        workloads = sorted(panel["workload"].unique())
        devices = sorted(panel[["gpu_arch", "gpu_name"]].drop_duplicates().itertuples(index=False))
        width = 0.8 / max(1, len(devices))
        x = np.arange(len(workloads))
        for i, (arch, name) in enumerate(devices):
            rows = panel[(panel["gpu_arch"] == arch) & (panel["gpu_name"] == name)]
            rows = rows.groupby("workload").first().reindex(workloads)
            heights = rows["overhead_pct"].to_numpy(dtype=float)
            errors = np.vstack(
                [
                    heights - rows["ci_low_pct"].to_numpy(dtype=float),
                    rows["ci_high_pct"].to_numpy(dtype=float) - heights,
                ]
            )
            ax.bar(
                x + (i - (len(devices) - 1) / 2) * width,
                heights,
                width,
                yerr=errors,
                capsize=3,
                label=f"{arch}: {name}",
            )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, workloads, rotation=30, ha="right")
        ax.set_ylabel("overhead (%)")
        ax.set_title(f"{framework}: {mode} vs {baseline} (median per-iteration time, 95 % CI)")
        ax.legend(fontsize="small", title="GPU architecture", title_fontsize="small")
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.pdf; returns the paths."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths
