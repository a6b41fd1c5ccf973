"""Kernel tables per mode and the per-kernel attribution of each mode's overhead.

Input is `Store.kernels()`: one row per (trial, kernel name) with `calls` and `total_ns` over
the trial's timed iterations (`iterations`). On a GPU the rows are CUDA kernels; with the
PyTorch profiler on the CPU they are operators (self CPU time).
"""

from __future__ import annotations

import pandas as pd

from nnr_profile.core.modes import ladder_order
from nnr_profile.reports.attribution import ATTRIBUTION_COLUMNS, attribute_overhead
from nnr_profile.reports.overhead import GROUP_COLUMNS, comparisons, group_keys

KERNEL_GROUP = [*GROUP_COLUMNS, "collector"]
KERNEL_COLUMNS = [
    *KERNEL_GROUP,
    "mode",
    "kernel",
    "short_name",
    "calls",
    "total_ns",
    "iterations",
    "calls_per_iter",
    "time_ms_per_iter",
]
ATTRIBUTION_TABLE_COLUMNS = [*KERNEL_GROUP, "baseline_mode", "mode", *ATTRIBUTION_COLUMNS]


def kernel_table(kernels: pd.DataFrame) -> pd.DataFrame:
    """Per group, mode (in ladder order) and kernel: calls and time per timed iteration
    (KERNEL_COLUMNS).

    Trials of the same cell pooled: `calls` and `total_ns` are sums, `iterations` the sum of
    the trials' timed iterations; `time_ms_per_iter` = total_ns / iterations / 1e6.
    """
    if kernels.empty:
        return pd.DataFrame(columns=KERNEL_COLUMNS)
    data = group_keys(kernels)
    iterations = (
        data.drop_duplicates("trial_id").groupby([*KERNEL_GROUP, "mode"])["iterations"].sum()
    )
    table = (
        data.groupby([*KERNEL_GROUP, "mode", "name"], dropna=False)
        .agg(
            short_name=("short_name", "first"), calls=("calls", "sum"), total_ns=("total_ns", "sum")
        )
        .reset_index()
        .rename(columns={"name": "kernel"})
    )
    table = table.merge(iterations.rename("iterations").reset_index(), on=[*KERNEL_GROUP, "mode"])
    table["calls_per_iter"] = table["calls"] / table["iterations"]
    table["time_ms_per_iter"] = table["total_ns"] / table["iterations"] / 1e6
    rank = {m: i for i, m in enumerate(ladder_order(list(set(table["mode"]))))}
    table = table.sort_values(
        [*KERNEL_GROUP, "mode", "total_ns"],
        ascending=[True] * (len(KERNEL_GROUP) + 1) + [False],
        key=lambda column: column.map(rank) if column.name == "mode" else column,
    )
    table["image_size"] = table["image_size"].astype(float).replace(0, float("nan"))
    return table[KERNEL_COLUMNS].reset_index(drop=True)


def attribution_table(kernels: pd.DataFrame) -> pd.DataFrame:
    """Per group: each mode's kernels against the baseline's (ATTRIBUTION_TABLE_COLUMNS).

    Pairs as in the overhead table (every mode vs `default`, and vs `fast` when measured);
    rows from `attribute_overhead`, whose deltas add up to the difference in total kernel time
    per iteration.
    """
    table = kernel_table(kernels)
    frames = []
    for key, group in table.groupby(KERNEL_GROUP, dropna=False):
        per_mode = {mode: frame for mode, frame in group.groupby("mode")}
        for baseline, mode in comparisons(list(per_mode)):
            base, other = per_mode[baseline], per_mode[mode]
            frame = attribute_overhead(
                base.rename(columns={"kernel": "name"}),
                other.rename(columns={"kernel": "name"}),
                int(base["iterations"].iloc[0]),
                int(other["iterations"].iloc[0]),
            )
            frame.insert(0, "mode", mode)
            frame.insert(0, "baseline_mode", baseline)
            for column, value in reversed(list(zip(KERNEL_GROUP, key, strict=True))):
                frame.insert(0, column, value)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=ATTRIBUTION_TABLE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[ATTRIBUTION_TABLE_COLUMNS]
