"""Precision on demand: add repeats to a sweep until every cell's 95 % interval is narrow enough.

After the sweep's first `repeats`, the overhead table of its timing trials is computed with the
report's own statistics (paired per repeat). Every row whose 95 % interval reaches further than
`target_pp` percentage points from its estimate on either side gets one more repeat, all modes
of it interleaved as in any sweep; this goes on until every row is within the target or has
`max_repeats` repeats. Repeats are ordinary sweep cells, so an interrupted run resumes where it
stopped, and re-running the same command takes the same decisions from the stored trials.

A row whose mode or baseline has no successful trial cannot narrow and gets no more repeats.
The stopping rule is `needs_more`, a pure function of the table, so simulations can check that
stopping on precision does not bias the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.params import Range, require
from nnr_profile.profiler.runner.pool import RunOutcome
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
from nnr_profile.reports.load import TimingReader
from nnr_profile.reports.overhead import SEQUENTIAL_COLUMNS, group_keys, with_sequential_interval
from nnr_profile.reports.overhead_report import overhead_rows
from nnr_profile.workloads.registry import get_workload

DEFAULT_MAX_REPEATS = 20
PRECISION_COLUMNS = [
    "framework",
    "workload",
    "gpu_arch",
    "gpu_name",
    "baseline_mode",
    "mode",
    "baseline_median_ms",
    "median_ms",
    "overhead_pct",
    "ci_low_pct",
    "ci_high_pct",
    "half_width_pp",
    "n_pairs",
    "n_trials",
    "reached",
    "hopeless",
]


@dataclass(frozen=True)
class PrecisionTarget:
    """Stop adding repeats when every 95 % interval is within `half_width_pp` points of its
    estimate on both sides, or at `max_repeats` repeats."""

    half_width_pp: float
    max_repeats: int = DEFAULT_MAX_REPEATS

    def __post_init__(self) -> None:
        require("target_ci", self.half_width_pp, Range(min=0, min_open=True))
        require("max_repeats", self.max_repeats, Range(integer=True, min=2))

    def check(self, spec: SweepSpec) -> None:
        """A usage error when the sweep starts above `max_repeats`."""
        if spec.repeats > self.max_repeats:
            raise ParameterError(
                "max_repeats",
                "({most}) is below {repeats} ({repeats_now}): raise it or lower {repeats}",
                most=self.max_repeats,
                repeats_now=spec.repeats,
            )


def precision_target(
    target_ci: float | None, max_repeats: int | None, repeats: int
) -> PrecisionTarget | None:
    """The goal of `target_ci` (None without it), reaching at most `max_repeats` (default: 20,
    or `repeats` when more); `max_repeats` alone is an error."""
    if target_ci is None:
        if max_repeats is not None:
            raise ParameterError("max_repeats", "only applies together with {target_ci}")
        return None
    return PrecisionTarget(target_ci, max_repeats or max(DEFAULT_MAX_REPEATS, repeats))


@dataclass
class PrecisionOutcome:
    """What the precision run did: trial counts, repeats reached, and the final rows."""

    outcome: RunOutcome
    repeats: int
    rows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PRECISION_COLUMNS))

    @property
    def short(self) -> pd.DataFrame:
        """Rows that did not reach the target."""
        return self.rows[~self.rows["reached"].astype(bool)]

    def summary(self, target: PrecisionTarget) -> list[str]:
        """Lines for the user: whether every cell got there, else which did not and why."""
        short = self.short
        if short.empty:
            return [
                f"precision: every cell's 95 % CI is within +-{target.half_width_pp:g} pp "
                f"after at most {self.repeats} repeat(s)"
            ]
        lines = [
            f"precision: {len(short)} of {len(self.rows)} cell(s) did not reach "
            f"+-{target.half_width_pp:g} pp (--max-repeats {target.max_repeats}):"
        ]
        for row in short.itertuples():
            if row.hopeless:
                why = "no successful trial in one of the modes"
            elif math.isnan(row.half_width_pp):
                why = f"no interval yet ({row.n_pairs} paired repeat(s))"
            else:
                why = f"+-{row.half_width_pp:.1f} pp after {row.n_pairs} paired repeat(s)"
            lines.append(
                f"  {row.framework}/{row.workload} {row.gpu_name or row.gpu_arch} "
                f"{row.mode} vs {row.baseline_mode}: {why}"
            )
        return lines


def needs_more(table: pd.DataFrame, half_width_pp: float) -> pd.Series:
    """The stopping rule: rows whose sequential interval is missing or wider than the target
    on a side (`half_widths`).

    `table` has the overhead table's overhead_pct, ci_low_pct, ci_high_pct, n_pairs,
    baseline_median_ms and median_ms; a row with no successful trial on one side is never
    'needing more'.
    """
    reach = half_widths(table)
    return ~(reach <= half_width_pp) & ~hopeless(table)


def half_widths(table: pd.DataFrame) -> pd.Series:
    """How far each row's sequential 95 % interval (`reports.stats.sequential_interval`, valid
    at the repeat this rule stops at) reaches from its estimate: the larger side, in pp.

    A t-interval table (no `interval` column saying 'sequential') is converted first with
    `reports.overhead.with_sequential_interval`, which needs n_pairs.
    """
    table = with_sequential_interval(table)
    upper = table["ci_high_pct"].astype(float) - table["overhead_pct"].astype(float)
    lower = table["overhead_pct"].astype(float) - table["ci_low_pct"].astype(float)
    return pd.concat([upper, lower], axis=1).max(axis=1, skipna=False)


def precision_rows(table: pd.DataFrame, half_width_pp: float) -> pd.DataFrame:
    """The final rows of a precision run from its overhead table: PRECISION_COLUMNS then
    SEQUENTIAL_COLUMNS, with the sequential interval in ci_low_pct / ci_high_pct (percent),
    interval = 'sequential', the t bounds kept in t_ci_low_pct / t_ci_high_pct, half_width_pp
    (pp), reached (half_width_pp <= `half_width_pp`) and hopeless."""
    rows = with_sequential_interval(table)
    rows = rows.assign(half_width_pp=half_widths(rows), hopeless=hopeless(rows))
    rows["reached"] = rows["half_width_pp"] <= half_width_pp
    return rows[[*PRECISION_COLUMNS, *SEQUENTIAL_COLUMNS]].reset_index(drop=True)


def hopeless(table: pd.DataFrame) -> pd.Series:
    """Rows whose mode or baseline has no successful trial (more repeats cannot help)."""
    base = table["baseline_median_ms"].astype(float)
    mode = table["median_ms"].astype(float)
    return base.isna() | mode.isna()


def precision_table(
    spec: SweepSpec,
    db: str | Path,
    repeats: int,
    half_width_pp: float,
    reader: TimingReader | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, devices): the sweep's overhead rows over repeats 0..repeats-1 with half_width_pp,
    reached and hopeless (PRECISION_COLUMNS), and the device labels behind each row's cell.

    The rows are the report's (`reports.overhead_report.overhead_rows` over the sweep's own
    trials); `reader` keeps the per-trial summaries between rounds, so each round reads only
    the iterations of its new trials.
    """
    from nnr_profile.store.database import Store

    planned = plan_sweep(replace(spec, repeats=repeats))
    keys = {c.cell_key for cells in planned.values() for c in cells if c.collector == "timing"}
    reader = reader or TimingReader()
    with Store(db) as store:
        store.mark_cells("interval", keys, "sequential")
        trials = store.trials()
        trials = trials[trials["cell_key"].isin(keys)]
        per_trial, _ = reader.read(store, trials)
    table = overhead_rows(per_trial, trials)
    if table.empty:
        return pd.DataFrame(columns=[*PRECISION_COLUMNS, *SEQUENTIAL_COLUMNS]), pd.DataFrame()
    cells = ["framework", "workload", "gpu_arch", "gpu_name"]
    devices = group_keys(trials)[[*cells, "device_label"]].drop_duplicates()
    return precision_rows(table, half_width_pp), devices


def narrowed(
    spec: SweepSpec, short: pd.DataFrame, devices: pd.DataFrame, repeats: int
) -> SweepSpec:
    """Repeat number `repeats - 1` of `spec`, for the workloads and devices of the `short` rows."""
    cells = ["framework", "workload", "gpu_arch", "gpu_name"]
    labels = set(short[cells].merge(devices, on=cells)["device_label"])
    pairs = set(zip(short["framework"], short["workload"], strict=True))
    workloads = tuple(w for w in spec.workloads if w in pairs)
    chosen = tuple(d for d in spec.devices if _label(d) in labels)
    args = {
        key: value
        for key, value in spec.workload_args.items()
        if any(key in get_workload(f, n).params for f, n in workloads)
    }
    return replace(
        spec,
        workloads=workloads,
        devices=chosen,
        repeats=repeats,
        first_repeat=repeats - 1,
        workload_args=args,
    )


def run_to_precision(
    spec: SweepSpec,
    db: str | Path,
    target: PrecisionTarget,
    launch: Callable[[SweepSpec], RunOutcome],
) -> PrecisionOutcome:
    """Run `spec`, then one more repeat at a time for the rows short of `target` (see module).

    `launch(spec)` runs a sweep's pending cells and stores them (e.g. `run_sweep` with a
    progress bar); it is called once per round.
    """
    target.check(spec)
    total = RunOutcome()
    repeats = spec.repeats
    current = spec
    reader = TimingReader()
    while True:
        total.merge(launch(current))
        rows, devices = precision_table(spec, db, repeats, target.half_width_pp, reader)
        more = rows[needs_more(rows, target.half_width_pp)] if not rows.empty else rows
        if more.empty or repeats >= target.max_repeats:
            return PrecisionOutcome(total, repeats, rows)
        current = narrowed(spec, more, devices, repeats + 1)
        if not current.workloads or not current.devices:
            return PrecisionOutcome(total, repeats, rows)
        repeats += 1


def _label(device: int | None) -> str:
    return "cpu" if device is None else f"gpu{device}"
