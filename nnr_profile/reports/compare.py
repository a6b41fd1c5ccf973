"""`nnr-profile compare OLD NEW`: did the determinism tax change between two stores?

Per (workload, GPU, mode) the ratio mode/baseline in each store (the report's paired estimate
with its 95 % t-interval), and the change new/old with a 95 % interval. The two stores are
independent samples, so the change is exp(mean_new - mean_old) of the mean paired log ratios,
with a Welch t-interval whose standard errors are read back from each side's interval
(se = (log high - log low) / (2 t_{n-1})). Kernels: per (cell, mode) the kernels of the new
store against the old one (which appeared, disappeared, got slower or faster), as in
`attribution.attribute_overhead`. Framework, CUDA, cuDNN and driver versions of each side
(from the stored fingerprints) are columns, and the Markdown can be grouped by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from nnr_profile.core.text import markdown_cell
from nnr_profile.reports.attribution import attribute_overhead
from nnr_profile.reports.export import args_label, format_ratio, write_csv
from nnr_profile.reports.kernels import KERNEL_GROUP, kernel_table
from nnr_profile.reports.overhead import GROUP_COLUMNS, group_keys
from nnr_profile.reports.overhead_report import report_overhead
from nnr_profile.reports.stats import CONFIDENCE
from nnr_profile.store.versions import VERSION_COLUMNS

KEY_COLUMNS = [*GROUP_COLUMNS, "baseline_mode", "mode"]
SIDE_COLUMNS = ["ratio", "ci_low", "ci_high", "n_pairs", *VERSION_COLUMNS]
COMPARE_COLUMNS = [
    *KEY_COLUMNS,
    *(f"old_{c}" for c in SIDE_COLUMNS),
    *(f"new_{c}" for c in SIDE_COLUMNS),
    "change",
    "change_pct",
    "change_ci_low",
    "change_ci_high",
    "p_value",
    "verdict",
]
KERNEL_DIFF_COLUMNS = [
    *KERNEL_GROUP,
    "mode",
    "kernel",
    "old_calls",
    "new_calls",
    "old_ms_per_iter",
    "new_ms_per_iter",
    "delta_ms_per_iter",
    "change",
]
GROUPABLE = [f"{side}_{c}" for side in ("old", "new") for c in VERSION_COLUMNS]
"""Columns the Markdown can be grouped by (`--group-by`)."""


@dataclass
class Side:
    """One store as the comparison reads it: overhead rows with versions, and its kernels."""

    overhead: pd.DataFrame
    kernels: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def cell_key(frame: pd.DataFrame) -> pd.Series:
    """A comparable text key of GROUP_COLUMNS per row (unset image size, None and '' alike)."""

    def norm(value: object) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return "" if value == 0 else f"{float(value):g}"
        return str(value)

    columns = [frame[c].map(norm) for c in GROUP_COLUMNS]
    return pd.Series(
        ["\x1f".join(parts) for parts in zip(*columns, strict=True)], index=frame.index
    )


def side_table(
    per_trial: pd.DataFrame, trials: pd.DataFrame, versions: pd.DataFrame
) -> pd.DataFrame:
    """The report's overhead table of one store with its cells' versions (joined by '/').

    `per_trial` and `trials` as `reports.load.ReportInputs` has them; `versions` as
    `store.versions.trial_versions` returns them.
    """
    overhead = report_overhead(per_trial, trials)
    overhead = overhead[overhead["ratio"].notna()].reset_index(drop=True)
    if per_trial.empty:
        return overhead.reindex(columns=[*overhead.columns, *VERSION_COLUMNS])
    cells = group_keys(per_trial).merge(versions, on="trial_id", how="left")
    cells["key"] = cell_key(cells)
    joined = cells.groupby("key")[VERSION_COLUMNS].agg(_joined)
    overhead["key"] = cell_key(overhead)
    overhead = overhead.merge(joined, left_on="key", right_index=True, how="left")
    return overhead.drop(columns="key")


def load_side(path: str | Path) -> Side:
    """Read one store (file or folder of shards): its overhead rows with versions, its kernels."""
    from nnr_profile.reports.load import skipped_note, timing_inputs, unchecked_note
    from nnr_profile.store.merge import open_results
    from nnr_profile.store.versions import trial_versions

    with open_results(path) as store:
        trials, per_trial, skipped = timing_inputs(store)
        versions = trial_versions(store)
        kernels = store.kernels()
        checked = store.checked
    skipped_line = skipped_note(skipped)
    notes = [f"{path}: {skipped_line}" if skipped_line else None]
    notes.append(None if checked else unchecked_note(path))
    return Side(side_table(per_trial, trials, versions), kernels, [n for n in notes if n])


def _joined(values: pd.Series) -> str | None:
    found = sorted({str(v) for v in values if v is not None and not pd.isna(v)})
    return "/".join(found) if found else None


def _log_se(low: pd.Series, high: pd.Series, n: pd.Series) -> np.ndarray:
    """Standard error of the mean log ratio, read back from a t-interval on n pairs."""
    n = n.to_numpy(dtype=float)
    df = np.where(n >= 2, n - 1, np.nan)
    critical = stats.t.ppf(0.5 + CONFIDENCE / 2, df)
    width = np.log(high.to_numpy(dtype=float)) - np.log(low.to_numpy(dtype=float))
    return width / (2 * critical)


def compare_tables(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """COMPARE_COLUMNS per cell and comparison in both stores (outer: one side may be missing).

    Each side has the overhead columns (ratio, ci_low_pct, ci_high_pct, n_pairs) and
    VERSION_COLUMNS. change = new ratio / old ratio; its interval and p-value are Welch's on
    the mean log ratios; verdict: 'more expensive' / 'cheaper' when the interval excludes 1,
    'no clear change' otherwise, 'only old' / 'only new' when a side is missing.
    """
    sides = []
    for prefix, frame in (("old", old), ("new", new)):
        side = frame.assign(
            ci_low=1 + frame["ci_low_pct"].astype(float) / 100,
            ci_high=1 + frame["ci_high_pct"].astype(float) / 100,
            join=cell_key(frame) + "\x1f" + frame["baseline_mode"] + "\x1f" + frame["mode"],
        )
        renamed = side[["join", *KEY_COLUMNS, *SIDE_COLUMNS]].rename(
            columns={c: f"{prefix}_{c}" for c in SIDE_COLUMNS}
        )
        sides.append(renamed)
    table = sides[0].merge(sides[1], on="join", how="outer", suffixes=("", "_new_side"))
    for column in KEY_COLUMNS:
        table[column] = table[column].where(table[column].notna(), table[f"{column}_new_side"])
    table["change"] = table["new_ratio"] / table["old_ratio"]
    table["change_pct"] = (table["change"] - 1) * 100
    se_old = _log_se(table["old_ci_low"], table["old_ci_high"], table["old_n_pairs"])
    se_new = _log_se(table["new_ci_low"], table["new_ci_high"], table["new_n_pairs"])
    diff = np.log(table["new_ratio"].to_numpy(dtype=float)) - np.log(
        table["old_ratio"].to_numpy(dtype=float)
    )
    se = np.sqrt(se_old**2 + se_new**2)
    n_old = table["old_n_pairs"].to_numpy(dtype=float)
    n_new = table["new_n_pairs"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = se**4 / (se_old**4 / (n_old - 1) + se_new**4 / (n_new - 1))
        critical = stats.t.ppf(0.5 + CONFIDENCE / 2, df)
        table["change_ci_low"] = np.exp(diff - critical * se)
        table["change_ci_high"] = np.exp(diff + critical * se)
        table["p_value"] = 2 * stats.t.sf(np.abs(diff / se), df)
    table["verdict"] = [
        _verdict(o, n, lo, hi)
        for o, n, lo, hi in zip(
            table["old_ratio"],
            table["new_ratio"],
            table["change_ci_low"],
            table["change_ci_high"],
            strict=True,
        )
    ]
    return table.reindex(columns=COMPARE_COLUMNS).sort_values(KEY_COLUMNS).reset_index(drop=True)


def _verdict(old: float, new: float, low: float, high: float) -> str:
    if pd.isna(old):
        return "only new"
    if pd.isna(new):
        return "only old"
    if np.isfinite(low) and low > 1:
        return "more expensive"
    if np.isfinite(high) and high < 1:
        return "cheaper"
    return "no clear change"


def kernel_diff(old_kernels: pd.DataFrame, new_kernels: pd.DataFrame) -> pd.DataFrame:
    """Per (kernel cell, mode) in both stores: each kernel's ms per iteration old -> new."""
    old, new = kernel_table(old_kernels), kernel_table(new_kernels)
    if old.empty or new.empty:
        return pd.DataFrame(columns=KERNEL_DIFF_COLUMNS)
    frames = []
    for frame in (old, new):
        frame["join"] = cell_key(frame) + "\x1f" + frame["collector"] + "\x1f" + frame["mode"]
    for join, new_rows in new.groupby("join"):
        old_rows = old[old["join"] == join]
        if old_rows.empty:
            continue
        diff = attribute_overhead(
            old_rows.rename(columns={"kernel": "name"}),
            new_rows.rename(columns={"kernel": "name"}),
            int(old_rows["iterations"].iloc[0]),
            int(new_rows["iterations"].iloc[0]),
        )
        diff = diff.rename(
            columns={
                "base_calls": "old_calls",
                "other_calls": "new_calls",
                "base_ms_per_iter": "old_ms_per_iter",
                "other_ms_per_iter": "new_ms_per_iter",
            }
        )
        first = new_rows.iloc[0]
        for column in [*KERNEL_GROUP, "mode"]:
            diff[column] = first[column]
        frames.append(diff)
    if not frames:
        return pd.DataFrame(columns=KERNEL_DIFF_COLUMNS)
    return pd.concat(frames, ignore_index=True).reindex(columns=KERNEL_DIFF_COLUMNS)


def compare_markdown(table: pd.DataFrame, group_by: list[str] | None = None) -> str:
    """The comparison as Markdown; with `group_by` (GROUPABLE columns), one section per group."""
    shown = pd.DataFrame(
        {
            "workload": [
                f"{w} ({f})" + (f" {args_label(a)}" if args_label(a) else "")
                for w, f, a in zip(
                    table["workload"], table["framework"], table["workload_args"], strict=True
                )
            ],
            "GPU": table["gpu_name"].where(table["gpu_name"].astype(bool), table["device"]),
            "mode": table["mode"] + " vs " + table["baseline_mode"],
            "old": [_ratio_ci(r, lo, hi) for r, lo, hi in _triples(table, "old")],
            "new": [_ratio_ci(r, lo, hi) for r, lo, hi in _triples(table, "new")],
            "change": [
                _ratio_ci(r, lo, hi)
                for r, lo, hi in zip(
                    table["change"], table["change_ci_low"], table["change_ci_high"], strict=True
                )
            ],
            "verdict": table["verdict"],
            "versions": [_versions(row) for _, row in table.iterrows()],
        }
    )
    if not group_by:
        return _pipe(shown)
    parts = []
    for key, part in table.groupby(group_by, dropna=False, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        index = part.index
        title = ", ".join(
            f"{c} {v if not pd.isna(v) else 'unknown'}"
            for c, v in zip(group_by, values, strict=True)
        )
        parts.append(f"### {markdown_cell(title)}\n\n{_pipe(shown.loc[index])}")
    return "\n\n".join(parts)


def _triples(table: pd.DataFrame, side: str):
    return zip(
        table[f"{side}_ratio"], table[f"{side}_ci_low"], table[f"{side}_ci_high"], strict=True
    )


def _ratio_ci(ratio: float, low: float, high: float) -> str:
    if pd.isna(ratio):
        return "n/a"
    ci = (
        f" [{format_ratio(low)}, {format_ratio(high)}]"
        if np.isfinite(low) and np.isfinite(high)
        else ""
    )
    return format_ratio(ratio) + ci


def _versions(row: pd.Series) -> str:
    parts = []
    for column in VERSION_COLUMNS:
        old, new = row[f"old_{column}"], row[f"new_{column}"]
        if pd.isna(old) and pd.isna(new):
            continue
        old, new = "?" if pd.isna(old) else old, "?" if pd.isna(new) else new
        name = column.replace("_version", "")
        parts.append(f"{name} {old}" if old == new else f"{name} {old} -> {new}")
    return "; ".join(parts)


def _pipe(shown: pd.DataFrame) -> str:
    header = "| " + " | ".join(markdown_cell(c) for c in shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = [
        "| " + " | ".join(markdown_cell(v) for v in row) + " |"
        for row in shown.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def compare_figure(table: pd.DataFrame):
    """Old and new ratio with their 95 % intervals, one row per cell and comparison."""
    from nnr_profile.reports.plots import plt

    rows = table.reset_index(drop=True)
    labels = [
        f"{w} ({f}) {g or d} {m}"
        for w, f, g, d, m in zip(
            rows["workload"],
            rows["framework"],
            rows["gpu_name"],
            rows["device"],
            rows["mode"],
            strict=True,
        )
    ]
    height = max(2.5, 0.45 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(7.5, height))
    y = np.arange(len(rows))
    for offset, side, colour in ((-0.15, "old", "tab:grey"), (0.15, "new", "tab:red")):
        ratio = rows[f"{side}_ratio"].to_numpy(dtype=float)
        low = rows[f"{side}_ci_low"].to_numpy(dtype=float)
        high = rows[f"{side}_ci_high"].to_numpy(dtype=float)
        errors = np.vstack([np.nan_to_num(ratio - low), np.nan_to_num(high - ratio)])
        ax.errorbar(ratio, y + offset, xerr=errors, fmt="o", color=colour, label=side, capsize=3)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(y, [label[:60] for label in labels])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("time ratio mode / baseline (95 % CI over paired repeats)")
    ax.set_title("Determinism tax, old vs new store")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def write_compare(
    table: pd.DataFrame, kernels: pd.DataFrame, out: Path, group_by: list[str] | None = None
) -> list[Path]:
    """compare.csv, compare.md, compare.{png,pdf}, compare.html and, with kernels,
    kernel_diff.csv."""
    from nnr_profile.reports.html import write_page
    from nnr_profile.reports.plots import save_figure

    paths = [write_csv(table, out / "compare.csv"), out / "compare.md"]
    paths[1].write_text(compare_markdown(table, group_by) + "\n", encoding="utf-8")
    figures = save_figure(compare_figure(table), out / "compare") if not table.empty else []
    paths += figures
    if not kernels.empty:
        paths.append(write_csv(kernels, out / "kernel_diff.csv"))
    facts = {"measured": [("rows compared", str(len(table)))]}
    if group_by:
        facts["measured"].append(("grouped by", ", ".join(group_by)))
    tables = {"compare": table, "kernel_diff": kernels}
    pngs = {"compare": [f for f in figures if f.suffix == ".png"]}
    paths.append(write_page(out / "compare.html", "nnr-profile compare", tables, pngs, facts))
    return paths
