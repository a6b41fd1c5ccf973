"""Figures for variability, gradient noise and loss landscapes (matplotlib, no display needed).

Each function takes a report DataFrame and returns a Figure; `plots.save_figure` writes it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nnr_profile.reports.variability import SETTING_ORDER


def _settings(values: pd.Series) -> list[str]:
    present = list(dict.fromkeys(values))
    return [s for s in SETTING_ORDER if s in present] + [
        s for s in present if s not in SETTING_ORDER
    ]


def accuracy_strip_figure(points: pd.DataFrame) -> plt.Figure:
    """Test accuracy of every replica, one column of points per noise setting (mean marked).

    `points` has columns setting, accuracy (fraction), workload, dataset (`accuracy_points`).
    """
    settings = _settings(points["setting"])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(settings) + 2), 3.5))
    rng = np.random.default_rng(0)
    for i, setting in enumerate(settings):
        acc = 100 * points.loc[points["setting"] == setting, "accuracy"].to_numpy(dtype=float)
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(acc)), acc, s=18, alpha=0.7)
        if len(acc):
            ax.hlines(acc.mean(), i - 0.25, i + 0.25, color="black", linewidth=1.5)
    ax.set_xticks(range(len(settings)), settings)
    ax.set_xlabel("noise setting")
    ax.set_ylabel("test accuracy (%)")
    names = sorted(
        {f"{w} on {d}" for w, d in zip(points["workload"], points["dataset"], strict=False)}
    )
    ax.set_title(f"Replica accuracy per noise setting: {', '.join(names)}", fontsize="medium")
    ax.ticklabel_format(axis="y", useOffset=False)
    fig.tight_layout()
    return fig


def per_class_std_figure(per_class: pd.DataFrame) -> plt.Figure:
    """Bars of per-class accuracy std over replicas (percentage points), one group per setting.

    `per_class` has columns setting, label, acc_std (fraction), as `per_class_table` returns.
    """
    settings = _settings(per_class["setting"])
    labels = sorted(per_class["label"].unique())
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(labels) * len(settings) + 2), 3.5))
    width = 0.8 / max(1, len(settings))
    x = np.arange(len(labels))
    for i, setting in enumerate(settings):
        rows = per_class[per_class["setting"] == setting].groupby("label")["acc_std"].mean()
        heights = 100 * rows.reindex(labels).fillna(0).to_numpy(dtype=float)
        ax.bar(x + (i - (len(settings) - 1) / 2) * width, heights, width, label=setting)
    step = max(1, len(labels) // 30)
    ax.set_xticks(x[::step], [str(v) for v in labels[::step]])
    ax.set_xlabel("class")
    ax.set_ylabel("accuracy std over replicas (pp)")
    ax.set_title("Which classes move most across replicas", fontsize="medium")
    ax.legend(fontsize="small", title="noise setting", title_fontsize="small")
    fig.tight_layout()
    return fig


def subgroup_rates_figure(subgroups: pd.DataFrame, top: int = 12) -> plt.Figure:
    """Std over replicas of FPR and FNR (percentage points) for the subgroups that move most.

    `subgroups` has columns setting, attribute, value, fpr_std, fnr_std (fractions), as
    `subgroup_table` returns; the `top` subgroups by their largest std in any setting are drawn.
    """
    frame = subgroups.assign(
        subgroup=subgroups["attribute"] + "=" + subgroups["value"].map({True: "1", False: "0"})
    )
    spread = frame.groupby("subgroup")[["fpr_std", "fnr_std"]].max().max(axis=1)
    chosen = list(spread.fillna(0).sort_values(ascending=False, kind="stable").index[:top])
    settings = _settings(frame["setting"])
    fig, axes = plt.subplots(1, 2, figsize=(11, max(3.0, 0.35 * len(chosen) * len(settings))))
    height = 0.8 / max(1, len(settings))
    y = np.arange(len(chosen))
    panels = (("fpr_std", "false-positive"), ("fnr_std", "false-negative"))
    for ax, (column, name) in zip(axes, panels, strict=True):
        for i, setting in enumerate(settings):
            rows = frame[frame["setting"] == setting].groupby("subgroup")[column].mean()
            widths = 100 * rows.reindex(chosen).fillna(0).to_numpy(dtype=float)
            ax.barh(y + (i - (len(settings) - 1) / 2) * height, widths, height, label=setting)
        ax.set_yticks(y, chosen, fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel(f"{name} rate std over replicas (pp)")
    axes[0].set_title("Subgroups whose error rates move most", fontsize="medium", loc="left")
    axes[1].legend(fontsize="small", title="noise setting", title_fontsize="small", loc="best")
    fig.tight_layout()
    return fig


def grad_snr_figure(table: pd.DataFrame) -> plt.Figure:
    """Per layer: share of weights with SNR < 1, and implementation vs sampling noise.

    `table` has columns mode, layer, share_snr_below_1 (fraction), impl_to_sampling (ratio),
    as `grad_snr.grad_snr_table` returns.
    """
    layers = list(dict.fromkeys(table["layer"]))
    modes = list(dict.fromkeys(table["mode"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.6 * len(layers) + 3), 6.5))
    width = 0.8 / max(1, len(modes))
    x = np.arange(len(layers))
    for i, mode in enumerate(modes):
        rows = table[table["mode"] == mode].set_index("layer").reindex(layers)
        offset = (i - (len(modes) - 1) / 2) * width
        top.bar(
            x + offset, 100 * rows["share_snr_below_1"].to_numpy(dtype=float), width, label=mode
        )
        ratio = rows["impl_to_sampling"].to_numpy(dtype=float)
        # a ratio of exactly 0 (bitwise-identical gradients) is drawn at the axis floor
        floor = 1e-12
        bottom.bar(x + offset, np.where(ratio > 0, ratio, floor), width, label=mode)
    top.set_ylabel("weights with SNR < 1 (%)")
    top.set_title("Gradient signal-to-noise per layer", fontsize="medium")
    top.set_xticks(x, layers, rotation=30, ha="right", fontsize="small")
    top.legend(fontsize="small", title="mode", title_fontsize="small")
    bottom.set_yscale("log")
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_ylabel("|impl. diff| / sampling std")
    bottom.set_title(
        "Implementation noise (same minibatch twice) vs minibatch sampling noise "
        "(0 drawn at 1e-12)",
        fontsize="medium",
    )
    bottom.set_xticks(x, layers, rotation=30, ha="right", fontsize="small")
    fig.tight_layout()
    return fig


def _grid(surface: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = (
        surface.pivot(index="beta", columns="alpha", values="loss").sort_index().sort_index(axis=1)
    )
    alpha, beta = np.meshgrid(table.columns.to_numpy(float), table.index.to_numpy(float))
    return alpha, beta, table.to_numpy(float)


def landscape_contour_figure(
    surface: pd.DataFrame, points: pd.DataFrame | None = None
) -> plt.Figure:
    """Contour of the loss over the (alpha, beta) plane, the centre and projected replicas.

    `surface` has columns alpha, beta, loss; `points` (optional) has label, alpha, beta.
    """
    alpha, beta, loss = _grid(surface)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    levels = np.linspace(np.nanmin(loss), np.nanmax(loss), 25)
    if levels[0] == levels[-1]:
        levels = 25
    contour = ax.contourf(alpha, beta, loss, levels=levels, cmap="viridis")
    ax.contour(alpha, beta, loss, levels=levels, colors="white", linewidths=0.3)
    fig.colorbar(contour, ax=ax, label="loss")
    ax.plot([0], [0], marker="*", color="red", markersize=12, label="centre")
    if points is not None and not points.empty:
        ax.scatter(
            points["alpha"],
            points["beta"],
            color="orange",
            edgecolor="black",
            s=30,
            label="other replicas (projected)",
        )
        for row in points.itertuples():
            ax.annotate(str(row.label), (row.alpha, row.beta), fontsize="x-small")
    ax.set_xlabel("direction 1 (filter-normalised)")
    ax.set_ylabel("direction 2 (filter-normalised)")
    ax.legend(fontsize="small", loc="upper right")
    ax.set_title("Loss landscape around the trained weights", fontsize="medium")
    fig.tight_layout()
    return fig


def landscape_surface_figure(surface: pd.DataFrame) -> plt.Figure:
    """3-D surface of the loss over the (alpha, beta) plane (`surface`: alpha, beta, loss)."""
    alpha, beta, loss = _grid(surface)
    fig = plt.figure(figsize=(6, 4.5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(alpha, beta, loss, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_zlabel("loss")
    ax.set_title("Loss surface", fontsize="medium")
    fig.tight_layout()
    return fig
