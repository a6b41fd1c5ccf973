"""The report's overhead and ladder tables: time overhead, each knob-ladder step's cost,
energy per iteration and clock noise, all from one row per successful timing trial.

`overhead.overhead_from_trials` gives the time overhead (OVERHEAD_COLUMNS); `ladder` adds
each step's cost over the previous step, `energy` the energy overhead, `clocks` the trials
whose clocks dropped or throttled to the `noisy` reasons.
"""

from __future__ import annotations

import pandas as pd

from nnr_profile.reports.clocks import clock_noise_by_mode, trial_column, with_clock_noise
from nnr_profile.reports.energy import ENERGY_COLUMNS, energy_overhead, with_energy
from nnr_profile.reports.ladder import LADDER_COLUMNS, STEP_COLUMNS, step_table, with_steps
from nnr_profile.reports.overhead import OVERHEAD_COLUMNS, overhead_from_trials

OVERHEAD_REPORT_COLUMNS = [*OVERHEAD_COLUMNS, *STEP_COLUMNS, *ENERGY_COLUMNS]
"""Columns of the report's overhead table (overhead.csv)."""


def timing_trials(trials: pd.DataFrame) -> pd.DataFrame | None:
    """The timing collector's trials (None when there are none)."""
    if trials is None or trials.empty:
        return None
    return trials[trials["collector"] == "timing"]


def report_overhead(per_trial: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """The overhead table with ladder steps, energy and clock noise (OVERHEAD_REPORT_COLUMNS).

    `per_trial`: one row per successful timing trial (`load.per_trial_frame`); `trials`: every
    trial (`Store.trials()`). Empty when no comparison has a ratio.
    """
    timing = timing_trials(trials)
    table = overhead_from_trials(per_trial, timing)
    if not table["ratio"].notna().any():
        return pd.DataFrame(columns=OVERHEAD_REPORT_COLUMNS)
    table = with_steps(table, step_table(per_trial, timing))
    table = with_energy(table, energy_overhead(per_trial, timing))
    noise = clock_noise_by_mode(trial_column(per_trial, timing, "clock_noise"))
    return with_clock_noise(table, noise)[OVERHEAD_REPORT_COLUMNS]


def report_ladder(per_trial: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """The ladder table (LADDER_COLUMNS) with clock noise in its noisy reasons; empty without
    an intermediate ladder step."""
    timing = timing_trials(trials)
    steps = step_table(per_trial, timing)
    if steps.empty:
        return steps
    noise = clock_noise_by_mode(trial_column(per_trial, timing, "clock_noise"))
    return with_clock_noise(steps, noise, baseline="step_from")[LADDER_COLUMNS]
