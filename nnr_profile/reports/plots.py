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
        ax.set_ylabel("overhead of median\niteration time (%)")
        ax.set_title(f"{framework}: {mode} vs {baseline}, whiskers = 95 % CI", fontsize="medium")
        ax.legend(fontsize="small", title="GPU architecture", title_fontsize="small")
    fig.tight_layout()
    return fig


CHANGE_COLOURS = {
    "added": "tab:red",
    "slower": "tab:orange",
    "same": "tab:gray",
    "faster": "tab:green",
    "removed": "tab:blue",
}


def attribution_figure(attribution: pd.DataFrame, top: int = 10) -> plt.Figure:
    """Horizontal bars of the `top` kernels by |delta ms per iteration|, one panel per comparison.

    Panels: (framework, workload, GPU, collector, baseline -> mode); colour = change
    (added, slower, same, faster, removed); `attribution` is `attribution_table`'s output.
    """
    keys = ["framework", "workload", "gpu_name", "collector", "baseline_mode", "mode"]
    panels = list(attribution.groupby(keys, sort=True))
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 0.35 * top * len(panels) + 1.2), squeeze=False
    )
    for ax, (key, panel) in zip(axes[:, 0], panels, strict=True):
        framework, workload, gpu_name, collector, baseline, mode = key
        rows = panel.reindex(panel["delta_ms_per_iter"].abs().sort_values(ascending=False).index)
        rows = rows.head(top).iloc[::-1]
        labels = [k if len(k) <= 60 else k[:57] + "..." for k in rows["kernel"]]
        ax.barh(
            labels, rows["delta_ms_per_iter"], color=[CHANGE_COLOURS[c] for c in rows["change"]]
        )
        ax.axvline(0, color="black", linewidth=0.8)
        total = panel["delta_ms_per_iter"].sum()
        ax.set_xlabel("change in time per iteration (ms)")
        ax.set_title(
            f"{framework}/{workload} on {gpu_name} ({collector}): {mode} vs {baseline}, "
            f"total {total:+.3f} ms/iter",
            fontsize="small",
        )
        ax.tick_params(axis="y", labelsize="x-small")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in CHANGE_COLOURS.values()]
    fig.legend(handles, list(CHANGE_COLOURS), loc="lower right", fontsize="small", ncol=5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.pdf; returns the paths."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths
