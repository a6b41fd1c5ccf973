"""The one overhead pipeline: a store's timing trials -> the overhead and ladder tables.

Every user of the overhead table (`report`, `gate` with or without its own sweep, `compare`,
precision on demand and `api.Results`) gets it here, so they cannot disagree: the checked
per-trial summaries of `load` (`timing_inputs`, or `TimingReader` incrementally), then
`report_overhead`: the time overhead of `overhead.overhead_from_trials` (OVERHEAD_COLUMNS),
each knob-ladder step's cost over the previous step (`ladder`), the energy overhead
(`energy`), and the trials whose clocks dropped or throttled among the `noisy` reasons
(`clocks`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnr_profile.reports.clocks import clock_noise_by_mode, trial_column, with_clock_noise
from nnr_profile.reports.energy import ENERGY_COLUMNS, energy_overhead, with_energy
from nnr_profile.reports.ladder import LADDER_COLUMNS, STEP_COLUMNS, step_table, with_steps
from nnr_profile.reports.load import timing_inputs
from nnr_profile.reports.overhead import (
    GROUP_COLUMNS,
    OVERHEAD_COLUMNS,
    SEQUENTIAL_COLUMNS,
    group_keys,
    overhead_from_trials,
    with_sequential_interval,
)
from nnr_profile.store.database import CELL_MARKS, Store

OVERHEAD_REPORT_COLUMNS = [
    *OVERHEAD_COLUMNS,
    *STEP_COLUMNS,
    *ENERGY_COLUMNS,
    *SEQUENTIAL_COLUMNS,
    "preset",
]
"""Columns of the report's overhead table (overhead.csv)."""


def timing_trials(trials: pd.DataFrame) -> pd.DataFrame | None:
    """The timing collector's trials (None when there are none)."""
    if trials is None or trials.empty:
        return None
    return trials[trials["collector"] == "timing"]


def overhead_rows(per_trial: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Every comparison's row with ladder steps, energy and clock noise
    (OVERHEAD_REPORT_COLUMNS), rows without a ratio (a side with no successful trial) included.

    `per_trial`: one row per successful timing trial (`load.per_trial_frame`); `trials`: every
    trial (`Store.trials()`).
    """
    timing = timing_trials(trials)
    table = overhead_from_trials(per_trial, timing)
    table = with_steps(table, step_table(per_trial, timing))
    table = with_energy(table, energy_overhead(per_trial, timing))
    noise = clock_noise_by_mode(trial_column(per_trial, timing, "clock_noise"))
    table = with_intervals(with_clock_noise(table, noise), timing)
    return with_presets(table, timing)[OVERHEAD_REPORT_COLUMNS]


def with_intervals(table: pd.DataFrame, trials: pd.DataFrame | None) -> pd.DataFrame:
    """`table` with SEQUENTIAL_COLUMNS: rows of cells whose repeats a precision target chose
    (`trials` with interval 'sequential', see `Store.mark_cells`) carry the sequential
    interval in ci_low_pct / ci_high_pct (`overhead.with_sequential_interval`), every other row
    the t-interval (interval 't'); t_ci_low_pct / t_ci_high_pct keep the t bounds (percent)."""
    out = table.assign(
        interval="t", t_ci_low_pct=table["ci_low_pct"], t_ci_high_pct=table["ci_high_pct"]
    )
    hit = np.array(["sequential" in marks for marks in row_marks(out, trials, "interval")])
    if hit.any():
        sequential = with_sequential_interval(out.loc[hit, OVERHEAD_COLUMNS])
        for column in ("ci_low_pct", "ci_high_pct", "interval"):
            out.loc[hit, column] = sequential[column].to_numpy()
    return out


def with_presets(table: pd.DataFrame, trials: pd.DataFrame | None) -> pd.DataFrame:
    """`table` with `preset`: the preset(s) that planned each row's trials ('/'-joined; ''
    for trials run with options alone)."""
    marks = row_marks(table, trials, "preset")
    return table.assign(preset=["/".join(sorted(m)) for m in marks])


def row_marks(table: pd.DataFrame, trials: pd.DataFrame | None, mark: str) -> list[set[str]]:
    """Per row of `table` (GROUP_COLUMNS), the values of the cell mark `mark` (a column of
    `Store.trials()`) among its cell's trials; empty sets where none is marked."""
    empty: list[set[str]] = [set() for _ in range(len(table))]
    if table.empty or trials is None or mark not in trials.columns:
        return empty
    marked = trials[trials[mark].notna() & (trials[mark] != CELL_MARKS[mark])]
    if marked.empty:
        return empty
    keyed = _cells(group_keys(marked)).assign(_mark=marked[mark].astype(str).to_numpy())
    values = keyed.groupby(GROUP_COLUMNS)["_mark"].agg(lambda v: frozenset(v)).reset_index()
    found = _cells(table).merge(values, on=GROUP_COLUMNS, how="left")["_mark"]
    return [set(v) if isinstance(v, frozenset) else set() for v in found]


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """GROUP_COLUMNS of `frame`, an unset image size (NaN or 0) as 0, ready to merge on."""
    image_size = pd.to_numeric(frame["image_size"], errors="coerce").fillna(0).astype(int)
    return frame[GROUP_COLUMNS].assign(image_size=image_size.to_numpy())


def report_overhead(per_trial: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """The report's overhead table: `overhead_rows`, empty when no comparison has a ratio."""
    table = overhead_rows(per_trial, trials)
    if not table["ratio"].notna().any():
        return pd.DataFrame(columns=OVERHEAD_REPORT_COLUMNS)
    return table


def report_ladder(per_trial: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """The ladder table (LADDER_COLUMNS) with clock noise in its noisy reasons; empty without
    an intermediate ladder step."""
    timing = timing_trials(trials)
    steps = step_table(per_trial, timing)
    if steps.empty:
        return steps
    noise = clock_noise_by_mode(trial_column(per_trial, timing, "clock_noise"))
    return with_clock_noise(steps, noise, baseline="step_from")[LADDER_COLUMNS]


def store_overhead(store: Store) -> pd.DataFrame:
    """The overhead table of an open store (OVERHEAD_REPORT_COLUMNS), as `report` writes it."""
    trials, per_trial, _ = timing_inputs(store)
    return report_overhead(per_trial, trials)
