"""The overhead table: each mode against `default` (and against `fast`), per cell, trial as unit.

A cell is one (framework, workload, workload_args, batch_size, image_size, device kind, GPU
architecture, GPU name); within it, a trial of the mode and a trial of the baseline that ran in
the same repeat on the same device and host form a pair (modes are interleaved within a repeat).
Everything is vectorised across cells: per-trial medians first, then one pass per comparison.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from nnr_profile.core.modes import BASELINE_MODES, MODES, ladder_order, same_as_default_note
from nnr_profile.reports.load import CELL_COLUMNS
from nnr_profile.reports.stats import (
    CONFIDENCE,
    MIN_PAIRS,
    NOISY_IQR_RATIO,
    holm,
    paired_estimate,
    sequential_from_t,
    trial_summary,
)

GROUP_COLUMNS = [c for c in CELL_COLUMNS if c != "host"]
"""The cell of the overhead table: a trial's cell, whichever host ran it."""
PAIR_COLUMNS = ["device_label", "host", "repeat"]
"""Within a cell, trials with equal values here are one pair (one repeat on one device)."""
OVERHEAD_COLUMNS = [
    *GROUP_COLUMNS,
    "baseline_mode",
    "mode",
    "baseline_median_ms",
    "median_ms",
    "ratio",
    "overhead_pct",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "p_holm",
    "n_pairs",
    "n_trials",
    "n_iterations",
    "n_failed",
    "noisy",
    "note",
]
INTERVALS = ("t", "sequential")
"""Which interval ci_low_pct / ci_high_pct hold: the fixed-size t interval, or the one that stays
valid when the repeats were added until it was narrow enough (`stats.sequential_interval`)."""
SEQUENTIAL_COLUMNS = ["interval", "t_ci_low_pct", "t_ci_high_pct"]
"""Added after OVERHEAD_COLUMNS with interval='sequential': the interval's name and the t bounds."""


def group_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` ready to group on GROUP_COLUMNS.

    device becomes 'cpu'/'cuda' (the label, e.g. 'gpu3', moves to device_label); image_size
    is 0 when unset; a missing GPU architecture or name is ''.
    """
    device = frame["device"].astype(str)
    names = ("framework", "workload", "workload_args", "mode")
    text = {c: frame[c].astype(str) for c in names if c in frame.columns}
    return frame.assign(
        **text,
        device_label=device,
        device=np.where(device == "cpu", "cpu", "cuda"),
        batch_size=frame["batch_size"].astype(int),
        image_size=pd.to_numeric(frame["image_size"], errors="coerce").fillna(0).astype(int),
        gpu_arch=frame["gpu_arch"].astype(object).fillna("").astype(str),
        gpu_name=frame["gpu_name"].astype(object).fillna("").astype(str),
    )


def comparisons(modes: list[str]) -> list[tuple[str, str]]:
    """(baseline, mode) pairs to report: every other mode vs `default`, and vs `fast` if present;
    modes in ladder order (`ladder_order`), not alphabetical."""
    pairs = []
    for baseline in BASELINE_MODES:
        if baseline not in modes:
            continue
        for mode in ladder_order(list(modes)):
            if (
                mode != baseline
                and mode not in BASELINE_MODES[: BASELINE_MODES.index(baseline) + 1]
            ):
                pairs.append((baseline, mode))
    return pairs


def per_trial_table(iterations: pd.DataFrame) -> pd.DataFrame:
    """One row per trial from raw iterations: its cell columns, mode, repeat, host, and
    `trial_summary`'s median_ms (ms), iqr_ratio (fraction) and n_iterations."""
    summary = trial_summary(iterations[["trial_id", "time_ms"]])
    keep = [c for c in [*GROUP_COLUMNS, "mode", "repeat", "host"] if c in iterations.columns]
    meta = iterations.drop_duplicates("trial_id")[["trial_id", *keep]]
    return meta.merge(summary, on="trial_id")


def overhead_table(
    iterations: pd.DataFrame, trials: pd.DataFrame | None = None, interval: str = "t"
) -> pd.DataFrame:
    """Overhead of each mode over each baseline mode, one row per cell and comparison.

    `iterations` has one row per timed iteration of a successful trial (trial_id, the
    GROUP_COLUMNS, mode, repeat, host, time_ms), as `Store.iterations()` returns; `trials`
    (optional, as `Store.trials()`) adds `n_failed`. See `overhead_from_trials` for columns.
    """
    return overhead_from_trials(per_trial_table(iterations), trials, interval=interval)


Pairs = Callable[[list[str]], list[tuple[str, str]]]
"""Which (baseline, mode) comparisons to make, from the modes measured (in ladder order)."""


def overhead_from_trials(
    per_trial: pd.DataFrame,
    trials: pd.DataFrame | None = None,
    confidence: float = CONFIDENCE,
    pairs: Pairs = comparisons,
    interval: str = "t",
) -> pd.DataFrame:
    """The overhead table from one row per successful trial (as `per_trial_table` returns).

    `trials` (optional, all trials with a `status`) adds n_failed per cell and mode; a mode
    whose trials all failed still gets its row (NaN figures, a note). Columns OVERHEAD_COLUMNS:
    baseline_median_ms / median_ms = median over trials of the per-trial median (ms);
    ratio = exp(mean paired log ratio); overhead_pct = (ratio - 1) * 100; ci_low_pct /
    ci_high_pct = the 95 % t-interval in percent; p_value = paired t-test; p_holm = Holm-adjusted
    across the rows of this table; n_pairs = paired repeats used; n_trials, n_iterations and
    n_failed of the mode; noisy = median within-trial IQR/median above 10 % on either side;
    note = why a figure is missing or weak. `pairs` picks the comparisons (default:
    `comparisons`; the knob ladder passes consecutive steps). `interval='sequential'` (for a
    sweep run with `--target-ci`) gives `with_sequential_interval` of that table: the sequential
    bounds in ci_low_pct / ci_high_pct, then SEQUENTIAL_COLUMNS (interval, t_ci_low_pct,
    t_ci_high_pct); p_value and p_holm stay the paired t-test's.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {interval!r}")
    columns = OVERHEAD_COLUMNS if interval == "t" else [*OVERHEAD_COLUMNS, *SEQUENTIAL_COLUMNS]
    data = _pair_keys(group_keys(per_trial)) if not per_trial.empty else None
    failed = _failed_counts(trials)
    per_mode = _per_mode(data, failed)
    if per_mode.empty:
        return pd.DataFrame(columns=columns)
    per_mode["cell"] = per_mode.groupby(GROUP_COLUMNS, sort=True).ngroup()
    rows = _paired_rows(data, per_mode, pairs)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    table = _finish(rows, per_mode, confidence)
    if interval == "sequential":
        table = with_sequential_interval(table, confidence)
    return table[columns].reset_index(drop=True)


def with_sequential_interval(table: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """`table` (any overhead table: ratio, ci_low_pct, ci_high_pct, n_pairs) with the sequential
    interval of `stats.sequential_from_t` in ci_low_pct / ci_high_pct (percent) and
    SEQUENTIAL_COLUMNS set: interval = 'sequential', t_ci_low_pct / t_ci_high_pct = the t bounds.
    A table whose `interval` column already says 'sequential' everywhere comes back as it is."""
    if "interval" in table.columns and (table["interval"] == "sequential").all():
        return table
    low, high = sequential_from_t(
        table["n_pairs"].to_numpy(dtype=float),
        1 + table["ci_low_pct"].to_numpy(dtype=float) / 100,
        1 + table["ci_high_pct"].to_numpy(dtype=float) / 100,
        confidence,
    )
    return table.assign(
        t_ci_low_pct=table["ci_low_pct"],
        t_ci_high_pct=table["ci_high_pct"],
        ci_low_pct=(low - 1) * 100,
        ci_high_pct=(high - 1) * 100,
        interval="sequential",
    )


def _pair_keys(data: pd.DataFrame) -> pd.DataFrame:
    """Fill host ('' when absent) and repeat (run order per cell, mode and device when absent)."""
    if "host" not in data.columns:
        data = data.assign(host="")
    data = data.assign(host=data["host"].astype(object).fillna("").astype(str))
    if "repeat" not in data.columns:
        ordered = data.sort_values("trial_id")
        keys = [*GROUP_COLUMNS, "mode", "device_label", "host"]
        data = data.assign(repeat=ordered.groupby(keys, sort=False).cumcount().reindex(data.index))
    return data


def _failed_counts(trials: pd.DataFrame | None) -> pd.DataFrame:
    """Trials that did not succeed, counted per cell and mode (column n_failed)."""
    columns = [*GROUP_COLUMNS, "mode", "n_failed"]
    if trials is None or trials.empty:
        return pd.DataFrame(columns=columns)
    bad = trials[trials["status"] != "ok"]
    if bad.empty:
        return pd.DataFrame(columns=columns)
    bad = group_keys(bad)
    return bad.groupby([*GROUP_COLUMNS, "mode"], sort=False).size().rename("n_failed").reset_index()


def _per_mode(data: pd.DataFrame | None, failed: pd.DataFrame) -> pd.DataFrame:
    """Per cell and mode: median_ms, iqr_ratio, n_trials, n_iterations, n_failed."""
    keys = [*GROUP_COLUMNS, "mode"]
    figures = ["median_ms", "iqr_ratio", "n_trials", "n_iterations"]
    if data is None:
        merged = failed.reindex(columns=[*keys, *figures, "n_failed"])
    else:
        ok = (
            data.groupby(keys, sort=False, observed=True)
            .agg(
                median_ms=("median_ms", "median"),
                iqr_ratio=("iqr_ratio", "median"),
                n_trials=("trial_id", "size"),
                n_iterations=("n_iterations", "sum"),
            )
            .reset_index()
        )
        merged = ok.merge(failed, on=keys, how="outer") if not failed.empty else ok
        merged = merged.reindex(columns=[*keys, *figures, "n_failed"])
    merged = merged.fillna({"n_trials": 0, "n_iterations": 0, "n_failed": 0})
    return merged.astype({"n_trials": int, "n_iterations": int, "n_failed": int})


def _paired_rows(data: pd.DataFrame | None, per_mode: pd.DataFrame, pairs: Pairs) -> pd.DataFrame:
    """Per cell and comparison: n_pairs, mean and sd of the paired log ratios."""
    keys = [*GROUP_COLUMNS, "mode"]
    wide = None
    if data is not None:
        data = data.merge(per_mode[[*keys, "cell"]], on=keys)
        data["pair"] = data.groupby(PAIR_COLUMNS, sort=False).ngroup()
        data["log_ms"] = np.log(data["median_ms"].astype(float))
        wide = data.pivot_table(
            index=["cell", "pair"], columns="mode", values="log_ms", aggfunc="mean"
        )
    modes_of = per_mode.groupby("mode")["cell"].agg(frozenset)
    frames = []
    for order, (baseline, mode) in enumerate(pairs(ladder_order(list(modes_of.index)))):
        cells = sorted(modes_of[baseline] & modes_of[mode])
        if not cells:
            continue
        summary = pd.DataFrame(index=pd.Index(cells, name="cell"))
        if wide is not None and baseline in wide.columns and mode in wide.columns:
            d = (wide[mode] - wide[baseline]).dropna().groupby(level="cell")
            summary = summary.join(
                pd.DataFrame({"n_pairs": d.size(), "mean_d": d.mean(), "sd_d": d.std(ddof=1)})
            )
        summary = summary.reindex(columns=["n_pairs", "mean_d", "sd_d"])
        summary["n_pairs"] = summary["n_pairs"].fillna(0).astype(int)
        frames.append(summary.reset_index().assign(order=order, baseline_mode=baseline, mode=mode))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).sort_values(["cell", "order"], kind="stable")


def _finish(rows: pd.DataFrame, per_mode: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Join cell and per-mode figures to the paired rows; estimates, Holm, noise, notes."""
    side = per_mode.set_index(["cell", "mode"])
    base = side.reindex(pd.MultiIndex.from_arrays([rows["cell"], rows["baseline_mode"]]))
    other = side.reindex(pd.MultiIndex.from_arrays([rows["cell"], rows["mode"]]))
    cells = per_mode.drop_duplicates("cell").set_index("cell")[GROUP_COLUMNS]
    table = cells.reindex(rows["cell"].to_numpy()).reset_index(drop=True)
    table["baseline_mode"] = rows["baseline_mode"].to_numpy()
    table["mode"] = rows["mode"].to_numpy()
    table["baseline_median_ms"] = base["median_ms"].to_numpy(dtype=float)
    table["median_ms"] = other["median_ms"].to_numpy(dtype=float)
    est = paired_estimate(
        rows["n_pairs"].to_numpy(), rows["mean_d"].to_numpy(), rows["sd_d"].to_numpy(), confidence
    )
    unpaired = table["median_ms"].to_numpy() / table["baseline_median_ms"].to_numpy()
    table["ratio"] = np.where(est.n_pairs >= 1, est.ratio, unpaired)
    table["overhead_pct"] = (table["ratio"] - 1) * 100
    table["ci_low_pct"] = (est.low - 1) * 100
    table["ci_high_pct"] = (est.high - 1) * 100
    table["p_value"] = est.p_value
    table["p_holm"] = holm(est.p_value)
    table["n_pairs"] = est.n_pairs
    table["n_trials"] = other["n_trials"].to_numpy(dtype=int)
    table["n_iterations"] = other["n_iterations"].to_numpy(dtype=int)
    table["n_failed"] = other["n_failed"].to_numpy(dtype=int)
    iqr = np.fmax(base["iqr_ratio"].to_numpy(dtype=float), other["iqr_ratio"].to_numpy(dtype=float))
    table["noisy"] = iqr > NOISY_IQR_RATIO
    table["note"] = [
        _note(int(n), int(nb), int(nm), sd)
        for n, nb, nm, sd in zip(
            est.n_pairs,
            base["n_trials"].to_numpy(dtype=int),
            table["n_trials"],
            rows["sd_d"].to_numpy(dtype=float),
            strict=True,
        )
    ]
    table["image_size"] = table["image_size"].astype(float).replace(0, np.nan)
    return table


def _note(n_pairs: int, base_trials: int, mode_trials: int, sd: float) -> str:
    """Why a row has no interval or leaves trials out ('' when nothing to say)."""
    if base_trials == 0 or mode_trials == 0:
        side = "baseline" if base_trials == 0 else "mode"
        return f"no successful {side} trial"
    notes = []
    if n_pairs == 0:
        notes.append("no repeat ran both modes: ratio of medians, no interval")
    elif n_pairs < MIN_PAIRS:
        notes.append(f"{n_pairs} paired repeat: no interval (run --repeats 3 or more)")
    elif not sd > 0:
        notes.append("identical repeats: no interval")
    elif n_pairs == MIN_PAIRS:
        notes.append("2 paired repeats: wide interval (t with 1 degree of freedom)")
    left_out = base_trials + mode_trials - 2 * n_pairs
    if left_out > 0 and n_pairs > 0:
        notes.append(f"{left_out} trial(s) without a partner left out")
    return "; ".join(notes)


def framework_notes(table: pd.DataFrame) -> list[str]:
    """Notes for the report: frameworks where `fast` equals `default` and so has no rows (tf)."""
    frameworks = sorted(set(table["framework"])) if not table.empty else []
    notes = [same_as_default_note(f, [MODES["fast"]]) for f in frameworks]
    return [note for note in notes if note]


FAILURE_COLUMNS = [*CELL_COLUMNS, "collector", "mode", "repeat", "status", "error"]


def failure_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that did not succeed, one row each, keyed by their full cell (FAILURE_COLUMNS)."""
    if trials.empty:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    bad = trials.loc[trials["status"] != "ok"]
    return bad.reindex(columns=FAILURE_COLUMNS).reset_index(drop=True)
