"""Figures from report tables (matplotlib, no display needed); large tables become pages.

A panel never holds more than MAX_BARS bars, nor more than GPUS_PER_PANEL GPUs (one colour
each), and a page more than PANELS_PER_PAGE panels: a table with more is split into further
panels and pages (one PDF with a page each, and one PNG per page), not crammed into one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.collections import PolyCollection

from nnr_profile.core.modes import ladder_order
from nnr_profile.reports.export import cell_label

MAX_BARS = 96
"""Most bars in one panel of the overhead figure."""
PANELS_PER_PAGE = 4
"""Most panels on one page (figure)."""
MIN_SLOTS = 3
"""A panel of fewer labels is drawn as wide as this many, its bars centred (not slabs)."""
COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
GPUS_PER_PANEL = len(COLOURS)
"""Most GPUs in one panel: each has its own colour there."""
PNG_DPI = 100
PDF_FONTS = {"pdf.fonttype": 42}
"""TrueType fonts in PDFs (venues refuse Type 3 fonts; also faster to write)."""


def overhead_figures(table: pd.DataFrame) -> Iterator[plt.Figure]:
    """Pages of grouped bars: overhead % per cell (x) and GPU (bar colour), 95 % CI whiskers.

    One panel per (framework, baseline -> mode) comparison, modes in ladder order, split into
    further panels of equal size when it has more than MAX_BARS bars; labels carry
    workload_args when they differ between rows. GPUs come in groups of GPUS_PER_PANEL, each
    GPU with its own colour in its group; with more than one group every panel has its own
    legend and a panel shows one group (its title says which), else one legend serves the
    page and a GPU has one colour on every page. `table` is `overhead_table`'s output
    (overhead_pct, ci_low_pct, ci_high_pct in percent).
    """
    data = table.assign(_label=cell_label(table).to_numpy())
    devices = sorted(set(zip(data["gpu_arch"], data["gpu_name"], strict=True)))
    colour = {d: COLOURS[i % GPUS_PER_PANEL] for i, d in enumerate(devices)}
    keys = list(zip(data["gpu_arch"], data["gpu_name"], strict=True))
    index = {d: i for i, d in enumerate(devices)}
    data["_colour"] = [colour[d] for d in keys]
    data["_device"] = [index[d] for d in keys]
    groups_of_gpus = -(-len(devices) // GPUS_PER_PANEL)
    panels = []
    rank = _mode_rank(data)
    groups = sorted(
        data.groupby(["framework", "baseline_mode", "mode"], sort=False),
        key=lambda item: (item[0][0], rank[item[0][1]], rank[item[0][2]]),
    )
    for (framework, baseline, mode), panel in groups:
        for group in range(groups_of_gpus):
            low, high = group * GPUS_PER_PANEL, (group + 1) * GPUS_PER_PANEL
            rows = panel[(panel["_device"] >= low) & (panel["_device"] < high)]
            if rows.empty:
                continue
            gpus = f", GPUs {low + 1}-{min(high, len(devices))} of {len(devices)}"
            title = f"{framework}: {mode} vs {baseline}{gpus if groups_of_gpus > 1 else ''}"
            panels.extend(_split(title, rows))
    shared = groups_of_gpus == 1
    return (_overhead_page(page, devices, colour, shared) for page in _pages(panels))


def _split(title: str, panel: pd.DataFrame) -> list[tuple]:
    """Panels of at most MAX_BARS bars from one comparison's rows (at most GPUS_PER_PANEL GPUs)."""
    labels = sorted(panel["_label"].unique())
    shown = sorted(panel["_device"].unique())
    size = -(-len(labels) // -(-len(labels) * len(shown) // MAX_BARS))
    count = -(-len(labels) // size)
    parts = []
    for part in range(count):
        chunk = labels[part * size : (part + 1) * size]
        suffix = f" (part {part + 1}/{count})" if count > 1 else ""
        parts.append((title + suffix, panel[panel["_label"].isin(chunk)], chunk, shown, size))
    return parts


def _overhead_page(panels: list[tuple], devices: list, colour: dict, shared: bool) -> plt.Figure:
    """One page of overhead panels, laid out in fixed inches (no layout pass: pages are many),
    each panel with room below it for its own longest label.

    `shared`: one legend of every GPU above the panels; else each panel has its own legend (at
    its right) of the GPUs it shows.
    """
    slots = max(size * len(shown) for _, _, _, shown, size in panels)
    plot_w, left, right = max(5.0, 0.11 * slots + 1.0), 0.9, 0.3 if shared else 3.2
    plot_h, top = 2.2, 0.45
    bottoms = [0.4 + 0.035 * max(len(_short(label)) for label in p[2]) for p in panels]
    legend_h = 0.25 + 0.18 * -(-len(devices) // 3) if shared else 0.3
    width_in = left + plot_w + right
    height_in = sum(top + plot_h + bottom for bottom in bottoms) + legend_h
    fig = plt.figure(figsize=(width_in, height_in))
    axes, y = [], height_in - legend_h
    for bottom in bottoms:
        y -= top + plot_h
        box = (left / width_in, y / height_in, plot_w / width_in, plot_h / height_in)
        axes.append(fig.add_axes(box))
        y -= bottom
    for ax, (title, panel, labels, shown, size) in zip(axes, panels, strict=True):
        width = min(0.5, 0.8 / len(shown))
        slot = {label: i for i, label in enumerate(labels)}
        offset = {device: i for i, device in enumerate(shown)}
        x = panel["_label"].map(slot).to_numpy(dtype=float)
        x = x + (panel["_device"].map(offset).to_numpy() - (len(shown) - 1) / 2) * width
        heights = np.nan_to_num(panel["overhead_pct"].to_numpy(dtype=float))
        _bars(ax, x, heights, width, list(panel["_colour"]))
        low, high = panel["ci_low_pct"].to_numpy(float), panel["ci_high_pct"].to_numpy(float)
        has_ci = np.isfinite(low) & np.isfinite(high)
        ax.vlines(x[has_ci], low[has_ci], high[has_ci], color="black", linewidth=0.8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(labels)), [_short(label) for label in labels])
        ax.tick_params(axis="x", labelrotation=30, labelsize="small")
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
        extra = max(0.0, (MIN_SLOTS - size) / 2)
        ax.set_xlim(-0.6 - extra, size - 0.4 + extra)
        ax.set_ylabel("overhead of median\niteration time (%)")
        ax.set_title(title, fontsize="medium")
        if not shared:
            names = [devices[i] for i in shown]
            ax.legend(
                [plt.Rectangle((0, 0), 1, 1, color=colour[d]) for d in names],
                [_short(f"{arch}: {name}", 36) for arch, name in names],
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                fontsize="x-small",
                frameon=False,
            )
    legend_title = "whiskers: 95 % CI over paired repeats (unit: trial)"
    if not shared:
        fig.suptitle(f"bars: GPU (legend beside each panel); {legend_title}", fontsize="small")
        return fig
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[d]) for d in devices]
    fig.legend(
        handles,
        [_short(f"{arch}: {name}") for arch, name in devices],
        loc="upper center",
        ncol=min(3, len(devices)),
        fontsize="small",
        title=f"bars: GPU architecture: name; {legend_title}",
        title_fontsize="small",
        frameon=False,
    )
    return fig


def _bars(ax: plt.Axes, x: np.ndarray, heights: np.ndarray, width: float, colours: list) -> None:
    """Vertical bars as one PolyCollection (far cheaper than a patch per bar on large pages)."""
    left, right = x - width / 2, x + width / 2
    zero = np.zeros_like(heights)
    verts = np.stack(
        [
            np.column_stack([left, zero]),
            np.column_stack([left, heights]),
            np.column_stack([right, heights]),
            np.column_stack([right, zero]),
        ],
        axis=1,
    )
    ax.add_collection(PolyCollection(verts, facecolors=colours, edgecolors="none"))
    ax.update_datalim(np.column_stack([x, heights]))
    ax.update_datalim(np.column_stack([x, zero]))
    ax.autoscale_view()


def _short(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


CHANGE_COLOURS = {
    "added": "tab:red",
    "slower": "tab:orange",
    "same": "tab:gray",
    "faster": "tab:green",
    "removed": "tab:blue",
}


def attribution_figures(attribution: pd.DataFrame, top: int = 10) -> Iterator[plt.Figure]:
    """Pages of horizontal bars: the `top` kernels by |delta ms per iteration| per comparison.

    Panels: (framework, workload and its arguments, GPU, collector, baseline -> mode); colour =
    change (added, slower, same, faster, removed); `attribution` is `attribution_table`'s output.
    """
    data = attribution.assign(_label=cell_label(attribution).to_numpy())
    keys = ["framework", "_label", "gpu_name", "collector", "baseline_mode", "mode"]
    rank = _mode_rank(data)
    panels = sorted(
        data.groupby(keys, sort=False),
        key=lambda item: (*item[0][:4], rank[item[0][4]], rank[item[0][5]]),
    )
    return (_attribution_page(page, top) for page in _pages(panels))


def _mode_rank(table: pd.DataFrame) -> dict[str, int]:
    """Each baseline and mode of `table` by its place in ladder order."""
    modes = set(table["mode"]) | set(table["baseline_mode"])
    return {m: i for i, m in enumerate(ladder_order(list(modes)))}


def _attribution_page(panels: list[tuple], top: int) -> plt.Figure:
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 0.35 * top * len(panels) + 1.2), squeeze=False
    )
    for ax, (key, panel) in zip(axes[:, 0], panels, strict=True):
        framework, label, gpu_name, collector, baseline, mode = key
        rows = panel.reindex(panel["delta_ms_per_iter"].abs().sort_values(ascending=False).index)
        rows = rows.head(top).iloc[::-1]
        labels = [k if len(k) <= 60 else k[:57] + "..." for k in rows["kernel"].astype(str)]
        ax.barh(
            labels, rows["delta_ms_per_iter"], color=[CHANGE_COLOURS[c] for c in rows["change"]]
        )
        ax.axvline(0, color="black", linewidth=0.8)
        total = panel["delta_ms_per_iter"].sum()
        ax.set_xlabel("change in time per iteration (ms)")
        ax.set_title(
            f"{framework}/{label} on {gpu_name} ({collector}): {mode} vs {baseline}, "
            f"total {total:+.3f} ms/iter",
            fontsize="small",
        )
        ax.tick_params(axis="y", labelsize="x-small")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in CHANGE_COLOURS.values()]
    fig.legend(handles, list(CHANGE_COLOURS), loc="lower right", fontsize="small", ncol=5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _pages(panels: list) -> Iterator[list]:
    for first in range(0, len(panels), PANELS_PER_PAGE):
        yield panels[first : first + PANELS_PER_PAGE]


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.pdf; returns the paths."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    with matplotlib.rc_context(PDF_FONTS):
        for path in paths:
            fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def save_figures(figures: Iterable[plt.Figure], stem: Path) -> list[Path]:
    """One page: `stem`.png and .pdf. More: `stem`.pdf with every page, `stem`-pNN.png each.

    Pages are drawn, saved and closed one at a time (`figures` may be a generator).
    """
    pages = iter(figures)
    first = next(pages, None)
    if first is None:
        return []
    second = next(pages, None)
    if second is None:
        return save_figure(first, stem)
    paths = [stem.with_suffix(".pdf")]
    with matplotlib.rc_context(PDF_FONTS), PdfPages(paths[0]) as pdf:
        for number, fig in enumerate(itertools.chain([first, second], pages), start=1):
            pdf.savefig(fig)
            png = stem.with_name(f"{stem.name}-p{number:02d}.png")
            fig.savefig(png, dpi=PNG_DPI, pil_kwargs={"compress_level": 1})
            paths.append(png)
            plt.close(fig)
    return paths
