"""The knob ladder's waterfall: one panel per (workload, GPU), each step's cost over the last.

Bars float: step k starts where step k-1 ended (the product of the step ratios so far, as a
% over default) and rises (red) or falls (green) by its own paired estimate; its whisker is
that step's 95 % CI at the same place. A last grey bar is the total, deterministic over
default, with its own CI. Titles are wrapped and the layout is constrained, so nothing is cut.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nnr_profile.reports.export import cell_label, gpu_label
from nnr_profile.reports.overhead import GROUP_COLUMNS
from nnr_profile.reports.plots import PANELS_PER_PAGE

PANEL_IN = (5.4, 3.9)
"""Width and height of one panel, inches."""
COLUMNS = 2
"""Panels side by side on a page."""
WHISKER_REACH = 0.5
"""How far beyond the bars (in bar spans) the y axis follows a whisker before cutting it."""
CAPTION = (
    "Bars: each step's cost over the step before (paired per-repeat ratio of median iteration "
    "time, placed on the running total over default); whiskers: the step's 95% CI over paired "
    "repeats (unit: trial), an arrowhead where it runs off the axis; grey: deterministic over "
    "default; *: noisy (see ladder.md)."
)


def ladder_figures(steps: pd.DataFrame) -> Iterator[plt.Figure]:
    """Pages of waterfalls from `ladder.step_table`'s output (one panel per cell)."""
    data = steps.assign(_label=cell_label(steps).to_numpy())
    panels = [panel.sort_values("step") for _, panel in data.groupby(GROUP_COLUMNS, dropna=False)]
    panels.sort(key=lambda p: (p["framework"].iloc[0], p["_label"].iloc[0], _gpu(p)))
    for first in range(0, len(panels), PANELS_PER_PAGE):
        yield _page(panels[first : first + PANELS_PER_PAGE])


def _gpu(panel: pd.DataFrame) -> str:
    return gpu_label(str(panel["gpu_arch"].iloc[0]), str(panel["gpu_name"].iloc[0]))


def _page(panels: list[pd.DataFrame]) -> plt.Figure:
    columns = min(COLUMNS, len(panels))
    rows = -(-len(panels) // columns)
    width, height = PANEL_IN[0] * columns, PANEL_IN[1] * rows + 0.7
    fig, axes = plt.subplots(
        rows, columns, figsize=(width, height), squeeze=False, layout="constrained"
    )
    for ax, panel in zip(axes.flat, panels, strict=False):
        _waterfall(ax, panel)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel(textwrap.fill(CAPTION, int(width * 15)), fontsize="small")
    return fig


def _waterfall(ax: plt.Axes, panel: pd.DataFrame) -> None:
    ratio = panel["step_ratio"].to_numpy(dtype=float)
    level = np.concatenate([[1.0], np.cumprod(ratio)])
    bottom, top = (level[:-1] - 1) * 100, (level[1:] - 1) * 100
    low = (level[:-1] * (1 + panel["step_ci_low_pct"].to_numpy(dtype=float) / 100) - 1) * 100
    high = (level[:-1] * (1 + panel["step_ci_high_pct"].to_numpy(dtype=float) / 100) - 1) * 100
    last = panel.iloc[-1]
    total_x = len(panel) + 1
    x = np.arange(1, len(panel) + 1, dtype=float)
    drawn = np.isfinite(bottom) & np.isfinite(top)
    total = float(last["overhead_pct"])
    xs = np.append(x, total_x)
    lows = np.append(low, last["ci_low_pct"]).astype(float)
    highs = np.append(high, last["ci_high_pct"]).astype(float)
    shown = np.append(drawn, np.isfinite(total))
    has_ci = shown & np.isfinite(lows) & np.isfinite(highs)
    floor, ceiling = _limits(np.concatenate([bottom[drawn], top[drawn], [total, 0.0]]), lows, highs)
    colours = np.where(top >= bottom, "tab:red", "tab:green")
    ax.bar(x[drawn], (top - bottom)[drawn], bottom=bottom[drawn], color=colours[drawn], width=0.6)
    if np.isfinite(total):
        ax.bar(total_x, total, color="tab:gray", width=0.6)
    cut_high, cut_low = has_ci & (highs > ceiling), has_ci & (lows < floor)
    lows, highs = np.clip(lows, floor, ceiling), np.clip(highs, floor, ceiling)
    ax.vlines(xs[has_ci], lows[has_ci], highs[has_ci], color="black", linewidth=0.9)
    ax.plot(xs[cut_high], highs[cut_high], "^", color="black", markersize=4)
    ax.plot(xs[cut_low], lows[cut_low], "v", color="black", markersize=4)
    above = np.fmax(np.fmax(top, bottom), np.where(has_ci[:-1], highs[:-1], -np.inf))
    for xi, value, y, ok, noisy in zip(
        x, panel["step_overhead_pct"], above, drawn, panel["noisy"].astype(bool), strict=True
    ):
        text = (f"{value:+.1f}%" if ok else "n/a") + ("*" if noisy else "")
        y = min(y, ceiling) if ok else 0.0
        ax.annotate(
            text,
            (xi, y),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize="x-small",
        )
    ax.axhline(0, color="black", linewidth=0.8)
    labels = ["default", *panel["step_label"].astype(str), f"total\n({last['mode']})"]
    ax.set_xticks(np.arange(len(labels)), [_wrap(label) for label in labels])
    ax.tick_params(axis="x", labelsize="x-small", labelrotation=25)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
    ax.set_xlim(-0.6, total_x + 0.6)
    span = ceiling - floor
    ax.set_ylim(floor - 0.04 * span, ceiling + 0.1 * span)
    ax.set_ylabel("over default's median\niteration time (%)", fontsize="small")
    default_ms = panel["default_median_ms"].iloc[0]
    base = f"default {default_ms:.3g} ms/iteration" if np.isfinite(default_ms) else "no default"
    title = f"{panel['framework'].iloc[0]}: {panel['_label'].iloc[0]} on {_gpu(panel)} ({base})"
    ax.set_title(textwrap.fill(title, 56), fontsize="small")


def _limits(bars: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> tuple[float, float]:
    """The y range: the bars, and whiskers as far as WHISKER_REACH bar spans beyond them
    (a whisker reaching further is cut there and marked with an arrowhead)."""
    bars = bars[np.isfinite(bars)]
    floor, ceiling = float(bars.min()), float(bars.max())
    span = max(ceiling - floor, 1.0)
    whiskers = np.concatenate([lows[np.isfinite(lows)], highs[np.isfinite(highs)]])
    if whiskers.size:
        floor = max(min(floor, float(whiskers.min())), floor - WHISKER_REACH * span)
        ceiling = min(max(ceiling, float(whiskers.max())), ceiling + WHISKER_REACH * span)
    return floor, ceiling


def _wrap(label: str) -> str:
    """Break a long knob label at its '+' joins so ticks stay short."""
    return label if len(label) <= 26 else label.replace("+", "\n+").lstrip("\n")
