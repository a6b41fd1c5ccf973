"""The knob ladder: each step's cost over the step before it, with the overhead's statistics.

`--modes ladder` runs default, step1_cublas_workspace, step2_cudnn_deterministic,
step3_deterministic_algorithms and deterministic (step 3 plus fill_uninitialized_memory),
interleaved within each repeat, so consecutive steps pair as a mode and its baseline do in
`overhead`: per repeat r, d_r = log(median of step k) - log(median of step k-1); ratio exp(mean
d), 95 % t-interval, paired t-test, Holm across the step rows. A cell's steps are the ladder
modes it measured (TensorFlow: default -> deterministic); a step whose trials all failed keeps
its row (no figure, a note), and so does the step after it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import FRAMEWORK_KNOBS, KNOBS, ladder, parse_mode
from nnr_profile.reports.overhead import GROUP_COLUMNS, overhead_from_trials
from nnr_profile.reports.stats import CONFIDENCE, holm

LADDER_MODES = tuple(mode.name for mode in ladder())
"""The ladder's modes in order: default, the intermediate steps, deterministic."""
STEP_COLUMNS = ["step_from", "step_overhead_pct", "step_ci_low_pct", "step_ci_high_pct"]
"""Columns the ladder adds to the overhead table (its rows against `default`)."""
LADDER_COLUMNS = [
    *GROUP_COLUMNS,
    "step",
    "step_from",
    "mode",
    "step_label",
    "default_median_ms",
    "step_from_median_ms",
    "median_ms",
    "step_ratio",
    "step_overhead_pct",
    "step_ci_low_pct",
    "step_ci_high_pct",
    "step_p_value",
    "step_p_holm",
    "ratio",
    "overhead_pct",
    "ci_low_pct",
    "ci_high_pct",
    "n_pairs",
    "n_trials",
    "n_failed",
    "noisy",
    "note",
]
_RANK = {name: i for i, name in enumerate(LADDER_MODES)}


def ladder_pairs(modes: list[str]) -> list[tuple[str, str]]:
    """Every (earlier, later) pair of the ladder modes among `modes`, in ladder order."""
    steps = sorted((m for m in modes if m in _RANK), key=_RANK.__getitem__)
    return [(a, b) for i, a in enumerate(steps) for b in steps[i + 1 :]]


def step_label(framework: str, previous: str, mode: str) -> str:
    """The knobs `mode` turns on over `previous` in `framework`, '+'-joined (e.g.
    `fill_uninitialized_memory`); `mode` itself when that cannot be told."""
    try:
        before, after = parse_mode(previous), parse_mode(mode)
    except UsageError:
        return mode
    read = FRAMEWORK_KNOBS.get(framework, frozenset(KNOBS))
    added = [k for k in KNOBS if k in read and after.is_on(k) and not before.is_on(k)]
    return "+".join(added) if added else mode


def has_ladder(modes: set[str] | list[str]) -> bool:
    """Whether an intermediate ladder step (not only default and deterministic) was measured."""
    return any(m in LADDER_MODES[1:-1] for m in modes)


def step_table(
    per_trial: pd.DataFrame, trials: pd.DataFrame | None = None, confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """One row per cell and ladder step: its cost over the previous step (LADDER_COLUMNS).

    Empty unless some cell measured an intermediate step. `per_trial` and `trials` as for
    `overhead_from_trials`. step_from = the previous ladder mode the cell measured;
    step_ratio / step_overhead_pct / step_ci_*_pct / step_p_value = the paired estimate of
    `mode` over step_from; step_p_holm = Holm across the step rows; ratio, overhead_pct and
    ci_*_pct = `mode` over default (the running total); n_pairs / note of the step.
    """
    modes = set(per_trial["mode"]) if "mode" in per_trial.columns else set()
    if trials is not None and "mode" in trials.columns:
        modes |= set(trials["mode"])
    if not has_ladder(modes):
        return pd.DataFrame(columns=LADDER_COLUMNS)
    rows = overhead_from_trials(per_trial, trials, confidence, pairs=ladder_pairs)
    if rows.empty:
        return pd.DataFrame(columns=LADDER_COLUMNS)
    rows["_cell"] = rows.groupby(GROUP_COLUMNS, sort=False, dropna=False).ngroup()
    rows["_from"] = rows["baseline_mode"].map(_RANK)
    latest = rows.groupby(["_cell", "mode"])["_from"].transform("max")
    steps = rows[rows["_from"] == latest].copy()
    total = rows[rows["baseline_mode"] == LADDER_MODES[0]].set_index(["_cell", "mode"])
    at = pd.MultiIndex.from_arrays([steps["_cell"], steps["mode"]])
    cumulative = total.reindex(at)
    steps = steps.rename(
        columns={
            "baseline_mode": "step_from",
            "baseline_median_ms": "step_from_median_ms",
            "ratio": "step_ratio",
            "overhead_pct": "step_overhead_pct",
            "ci_low_pct": "step_ci_low_pct",
            "ci_high_pct": "step_ci_high_pct",
            "p_value": "step_p_value",
        }
    )
    for column in ("ratio", "overhead_pct", "ci_low_pct", "ci_high_pct"):
        steps[column] = cumulative[column].to_numpy(dtype=float)
    defaults = total["baseline_median_ms"].groupby(level="_cell").first()
    steps["default_median_ms"] = steps["_cell"].map(defaults).astype(float)
    steps["step_p_holm"] = holm(steps["step_p_value"].to_numpy(dtype=float))
    steps["step_label"] = [
        step_label(f, a, b)
        for f, a, b in zip(steps["framework"], steps["step_from"], steps["mode"], strict=True)
    ]
    steps["_to"] = steps["mode"].map(_RANK)
    steps = steps.sort_values(["_cell", "_to"], kind="stable")
    steps["step"] = steps.groupby("_cell").cumcount() + 1
    return steps[LADDER_COLUMNS].reset_index(drop=True)


def with_steps(table: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """`table` (the overhead table) with STEP_COLUMNS on its rows against `default` that are
    ladder steps ('' and NaN elsewhere, and everywhere when `steps` is empty)."""
    out = table.drop(columns=[c for c in STEP_COLUMNS if c in table.columns])
    if steps.empty:
        return out.assign(step_from="", **{c: np.nan for c in STEP_COLUMNS[1:]})
    right = steps[[*GROUP_COLUMNS, "mode", *STEP_COLUMNS]].assign(baseline_mode=LADDER_MODES[0])
    out = out.merge(right, on=[*GROUP_COLUMNS, "baseline_mode", "mode"], how="left")
    out["step_from"] = out["step_from"].fillna("")
    return out
