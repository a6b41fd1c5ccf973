"""Figures for variability, gradient noise and loss landscapes (matplotlib, no display needed).

Each function takes a report DataFrame and returns a Figure; `plots.save_figure` writes it.
"""

from __future__ import annotations

from pathlib import Path

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
        label=subgroups["attribute"] + "=" + subgroups["value"].map({True: "1", False: "0"})
    )
    return _rate_spread_figure(frame, top, "Subgroups whose error rates move most")


def output_rates_figure(outputs: pd.DataFrame, top: int = 12) -> plt.Figure:
    """Std over replicas of FPR and FNR (percentage points) for the outputs that move most.

    `outputs` has columns setting, output, fpr_std, fnr_std (fractions), as
    `multilabel.output_table` returns; the pooled row is left out, and the `top` outputs by
    their largest std in any setting are drawn.
    """
    frame = outputs[outputs["output"] != "all"].assign(label=lambda f: f["output"])
    return _rate_spread_figure(frame, top, "Attributes whose error rates move most")


def _rate_spread_figure(frame: pd.DataFrame, top: int, title: str) -> plt.Figure:
    """Two panels of horizontal bars, fpr_std and fnr_std (pp) per `label` and setting."""
    spread = frame.groupby("label")[["fpr_std", "fnr_std"]].max().max(axis=1)
    chosen = list(spread.fillna(0).sort_values(ascending=False, kind="stable").index[:top])
    settings = _settings(frame["setting"])
    fig, axes = plt.subplots(1, 2, figsize=(11, max(3.0, 0.35 * len(chosen) * len(settings))))
    height = 0.8 / max(1, len(settings))
    y = np.arange(len(chosen))
    panels = (("fpr_std", "false-positive"), ("fnr_std", "false-negative"))
    for ax, (column, name) in zip(axes, panels, strict=True):
        for i, setting in enumerate(settings):
            rows = frame[frame["setting"] == setting].groupby("label")[column].mean()
            widths = 100 * rows.reindex(chosen).fillna(0).to_numpy(dtype=float)
            ax.barh(y + (i - (len(settings) - 1) / 2) * height, widths, height, label=setting)
        ax.set_yticks(y, chosen, fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel(f"{name} rate std over replicas (pp)")
    axes[0].set_title(title, fontsize="medium", loc="left")
    axes[1].legend(fontsize="small", title="noise setting", title_fontsize="small", loc="best")
    fig.tight_layout()
    return fig


def _noise_panel(ax: plt.Axes, x: np.ndarray, heights: np.ndarray, offset: float, **kw) -> None:
    """Log-scale bars of a noise ratio; exactly 0 (bitwise-identical gradients) at the floor."""
    floor = 1e-12
    ax.bar(x + offset, np.where(heights > 0, heights, floor), **kw)


def grad_snr_figure(table: pd.DataFrame) -> plt.Figure:
    """Per layer: share of weights with SNR < 1, implementation and replica noise vs sampling.

    `table` has columns setting, mode, layer, share_snr_below_1 (fraction), impl_to_sampling
    and replica_to_sampling (ratios), as `grad_snr.grad_snr_table` returns. Bars are grouped
    by noise setting when the table compares settings, else by mode; the replica panel is
    drawn when some group has more than one run.
    """
    by = "setting" if table["setting"].notna().any() else "mode"
    layers = list(dict.fromkeys(table["layer"]))
    groups = _settings(table[by]) if by == "setting" else list(dict.fromkeys(table[by]))
    replica = np.isfinite(table["replica_to_sampling"].to_numpy(dtype=float)).any()
    panels = 3 if replica else 2
    fig, axes = plt.subplots(panels, 1, figsize=(max(6.0, 0.6 * len(layers) + 3), 3.3 * panels))
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(layers))
    for i, group in enumerate(groups):
        rows = table[table[by] == group].set_index("layer").reindex(layers)
        offset = (i - (len(groups) - 1) / 2) * width
        share = 100 * rows["share_snr_below_1"].to_numpy(dtype=float)
        axes[0].bar(x + offset, share, width, label=group)
        impl = rows["impl_to_sampling"].to_numpy(dtype=float)
        _noise_panel(axes[1], x, impl, offset, width=width, label=group)
        if replica:
            spread = rows["replica_to_sampling"].to_numpy(dtype=float)
            _noise_panel(axes[2], x, np.nan_to_num(spread, nan=0.0), offset, width=width)
    axes[0].set_ylabel("weights with SNR < 1 (%)")
    axes[0].set_title("Gradient signal-to-noise per layer", fontsize="medium")
    axes[0].legend(fontsize="small", title=by, title_fontsize="small")
    titles = [
        "Implementation noise: one minibatch twice (0 drawn at 1e-12)",
        "Replica noise: one minibatch across replicas (0 drawn at 1e-12)",
    ]
    labels = ["|impl. diff| / sampling std", "replica std / sampling std"]
    for ax, title, label in zip(axes[1:], titles, labels, strict=False):
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_ylabel(label)
        ax.set_title(title, fontsize="medium", wrap=True)
    for ax in axes:
        ax.set_xticks(x, layers, rotation=30, ha="right", fontsize="small")
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


def write_grad_snr(table: pd.DataFrame, folder: Path) -> list[Path]:
    """grad_snr.csv and the grad_snr figure (PNG, PDF) of a `studies.grad_snr` table."""
    from nnr_profile.reports.export import write_csv
    from nnr_profile.reports.plots import save_figure

    return [
        write_csv(table, folder / "grad_snr.csv"),
        *save_figure(grad_snr_figure(table), folder / "grad_snr"),
    ]
