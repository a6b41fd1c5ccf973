"""The overhead table: each mode against `default` (and against `fast`), per workload and GPU."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnr_profile.core.modes import BASELINE_MODES, MODES, same_as_default_note
from nnr_profile.reports.stats import compare

GROUP_COLUMNS = [
    "framework",
    "workload",
    "workload_args",
    "batch_size",
    "image_size",
    "device",
    "gpu_arch",
    "gpu_name",
]
OVERHEAD_COLUMNS = [
    *GROUP_COLUMNS,
    "baseline_mode",
    "mode",
    "baseline_median_ms",
    "median_ms",
    "overhead_pct",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "n_trials",
    "n_iterations",
    "n_failed",
    "noisy",
]


def group_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` ready to group on GROUP_COLUMNS: device 'cpu'/'cuda', image_size 0 when unset."""
    return frame.assign(
        device=frame["device"].map(lambda label: "cpu" if label == "cpu" else "cuda"),
        image_size=frame["image_size"].fillna(0).astype(int),
    )


def comparisons(modes: list[str]) -> list[tuple[str, str]]:
    """(baseline, mode) pairs to report: every other mode vs `default`, and vs `fast` if present."""
    pairs = []
    for baseline in BASELINE_MODES:
        if baseline not in modes:
            continue
        for mode in modes:
            if (
                mode != baseline
                and mode not in BASELINE_MODES[: BASELINE_MODES.index(baseline) + 1]
            ):
                pairs.append((baseline, mode))
    return pairs


def overhead_table(
    iterations: pd.DataFrame, trials: pd.DataFrame | None = None, resamples: int = 2000
) -> pd.DataFrame:
    """Overhead of each mode over each baseline mode, one row per group and comparison.

    `iterations` has one row per timed iteration (columns trial_id, framework, workload,
    workload_args, batch_size, image_size, device, gpu_arch, gpu_name, mode, time_ms), as
    `Store.iterations()` returns. `trials` (optional, as `Store.trials()`) adds `n_failed`.
    Result columns: OVERHEAD_COLUMNS; times in ms, overhead and CI bounds in percent.
    """
    if iterations.empty:
        return pd.DataFrame(columns=OVERHEAD_COLUMNS)
    data = group_keys(iterations)
    failed = _failed_counts(trials)
    rows = []
    for key, group in data.groupby(GROUP_COLUMNS, sort=True, dropna=False):
        per_mode = {
            mode: [g["time_ms"].to_numpy() for _, g in frame.groupby("trial_id")]
            for mode, frame in group.groupby("mode")
        }
        for baseline, mode in comparisons(list(per_mode)):
            result = compare(per_mode[baseline], per_mode[mode], resamples=resamples)
            rows.append(
                {
                    **dict(zip(GROUP_COLUMNS, key, strict=False)),
                    "baseline_mode": baseline,
                    "mode": mode,
                    "baseline_median_ms": result.baseline_median_ms,
                    "median_ms": result.median_ms,
                    "overhead_pct": result.overhead_pct,
                    "ci_low_pct": float(result.ci_low_pct),
                    "ci_high_pct": float(result.ci_high_pct),
                    "p_value": result.p_value,
                    "n_trials": len(per_mode[mode]),
                    "n_iterations": int(sum(len(t) for t in per_mode[mode])),
                    "n_failed": failed.get((key[0], key[1], mode), 0),
                    "noisy": bool(result.noisy),
                }
            )
    table = pd.DataFrame(rows, columns=OVERHEAD_COLUMNS)
    table["image_size"] = table["image_size"].replace(0, np.nan)
    return table


def framework_notes(table: pd.DataFrame) -> list[str]:
    """Notes for the report: frameworks where `fast` equals `default` and so has no rows (tf)."""
    frameworks = sorted(set(table["framework"])) if not table.empty else []
    notes = [same_as_default_note(f, [MODES["fast"]]) for f in frameworks]
    return [note for note in notes if note]


def _failed_counts(trials: pd.DataFrame | None) -> dict[tuple[str, str, str], int]:
    if trials is None or trials.empty:
        return {}
    bad = trials[trials["status"] != "ok"]
    return bad.groupby(["framework", "workload", "mode"]).size().to_dict()


def failure_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that did not succeed: framework, workload, mode, device, repeat, status, error."""
    columns = ["framework", "workload", "mode", "device", "repeat", "status", "error"]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    return trials.loc[trials["status"] != "ok", columns].reset_index(drop=True)
