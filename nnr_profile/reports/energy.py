"""Energy per iteration: each mode's energy overhead over its baseline, beside the time overhead.

A trial's ``energy_j`` is what NVML's energy counter read over its timed iterations (None where
nothing measured it: the CPU, a GPU without the counter). Per trial it becomes energy per
iteration (energy_j / iterations, joules) and goes through the time's paired statistics
(`overhead.overhead_from_trials`): per repeat the log ratio of mode over baseline, ratio
exp(mean), 95 % t-interval. A row without energy on both sides gets NaN figures and the note
'energy not measured', never zeros.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnr_profile.reports.overhead import GROUP_COLUMNS, Pairs, comparisons, overhead_from_trials
from nnr_profile.reports.stats import CONFIDENCE

ENERGY_COLUMNS = [
    "baseline_energy_per_iter_j",
    "energy_per_iter_j",
    "energy_ratio",
    "energy_overhead_pct",
    "energy_ci_low_pct",
    "energy_ci_high_pct",
    "energy_n_pairs",
]
"""Columns energy adds to the overhead table (J per timed iteration, ratio, %, pairs used)."""
NOT_MEASURED = "energy not measured"
_RENAMED = {
    "baseline_median_ms": "baseline_energy_per_iter_j",
    "median_ms": "energy_per_iter_j",
    "ratio": "energy_ratio",
    "overhead_pct": "energy_overhead_pct",
    "ci_low_pct": "energy_ci_low_pct",
    "ci_high_pct": "energy_ci_high_pct",
    "n_pairs": "energy_n_pairs",
}


def energy_per_trial(per_trial: pd.DataFrame, trials: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of `per_trial` whose trial measured energy, with energy_per_iter_j (J).

    `trials` (as `Store.trials()`) gives each trial's energy_j and its count of timed
    iterations; a missing, non-finite or non-positive energy is not measured (row left out).
    """
    if trials is None or trials.empty or "energy_j" not in trials.columns:
        return per_trial.iloc[0:0].assign(energy_per_iter_j=pd.Series(dtype=float))
    by_id = trials.set_index("id")
    joules = pd.to_numeric(by_id["energy_j"], errors="coerce")
    count = pd.to_numeric(by_id["iterations"], errors="coerce")
    per_iteration = (joules / count).where((joules > 0) & (count > 0))
    value = per_trial["trial_id"].map(per_iteration).astype(float)
    keep = np.isfinite(value.to_numpy())
    return per_trial.loc[keep].assign(energy_per_iter_j=value[keep])


def energy_overhead(
    per_trial: pd.DataFrame,
    trials: pd.DataFrame | None,
    confidence: float = CONFIDENCE,
    pairs: Pairs = comparisons,
) -> pd.DataFrame:
    """Per cell and comparison: GROUP_COLUMNS, baseline_mode, mode and ENERGY_COLUMNS.

    The paired statistics of `overhead_from_trials` on energy per iteration instead of the
    median iteration time (empty when no trial measured energy).
    """
    columns = [*GROUP_COLUMNS, "baseline_mode", "mode", *ENERGY_COLUMNS]
    measured = energy_per_trial(per_trial, trials)
    if measured.empty:
        return pd.DataFrame(columns=columns)
    as_value = measured.assign(median_ms=measured["energy_per_iter_j"], iqr_ratio=0.0)
    table = overhead_from_trials(as_value, None, confidence, pairs=pairs)
    return table.rename(columns=_RENAMED)[columns]


def with_energy(table: pd.DataFrame, energy: pd.DataFrame) -> pd.DataFrame:
    """`table` (the overhead table) with ENERGY_COLUMNS joined on cell and comparison; a row
    with no energy ratio gets NaN figures and NOT_MEASURED in its note."""
    out = table.drop(columns=[c for c in ENERGY_COLUMNS if c in table.columns])
    if energy.empty:
        out = out.assign(**dict.fromkeys(ENERGY_COLUMNS, np.nan))
    else:
        keys = [*GROUP_COLUMNS, "baseline_mode", "mode"]
        out = out.merge(energy[[*keys, *ENERGY_COLUMNS]], on=keys, how="left")
    out["energy_n_pairs"] = out["energy_n_pairs"].fillna(0).astype(int)
    missing = out["energy_ratio"].isna().to_numpy()
    out["note"] = [
        "; ".join(filter(None, [str(note or ""), NOT_MEASURED if lost else ""]))
        for note, lost in zip(out["note"], missing, strict=True)
    ]
    return out
