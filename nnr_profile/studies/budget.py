"""A budget design (`run --budget MINUTES`): a pilot, then the iterations and repeats that give
the narrowest interval for the machine time of each cell (one model on one device, all modes).

The model is the two-level random-effects design of Kalibera and Jones ("Rigorous benchmarking
in reasonable time", ISMM 2013). A paired repeat's log ratio d = log(median mode) - log(median
baseline) varies between trials (variance s1^2: each trial process has its own state) and within
a trial over its n timed iterations (variance s2^2 per iteration of the log ratio, so s2^2 / n
for the trial's estimate). Over r paired repeats

    Var(mean d) = s1^2 / r + s2^2 / (r n)          cost = r M (o + n t)

with M modes, o the seconds a trial costs outside its timed iterations (process start, framework
import, model build, warm-up, store) and t the seconds of one timed iteration. For a fixed cost,
the variance is smallest at n* = sqrt(o s2^2 / (t s1^2)); r is then the most repeats that fit.

The pilot (`BudgetConfig.pilot_repeats` repeats of `pilot_iterations` iterations, an ordinary
sweep, stored like any trials) gives the estimates (`estimate_pilot`); the design's repeats are
numbered after the pilot's (`first_repeat`), so the report pairs pilot and design trials alike
and the final interval uses both. The pilot's cells have other keys than the design's (the
iteration count is part of a cell key) unless the design keeps the pilot's iterations. Every
decision is a function of the stored pilot, so a re-run takes the same design and resumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from nnr_profile.core.errors import ParameterError, UsageError
from nnr_profile.core.params import COUNT, NON_NEGATIVE, POSITIVE, Range, require
from nnr_profile.profiler.runner.launchers.base import Launcher
from nnr_profile.profiler.runner.launchers.cluster import ClusterLauncher
from nnr_profile.profiler.runner.pool import RunOutcome
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
from nnr_profile.reports.stats import CONFIDENCE
from nnr_profile.studies.measure import (
    Measurement,
    PlannedSweep,
    ProgressBar,
    measure,
    plan_measurement,
)
from nnr_profile.workloads.registry import get_workload

NOT_NEGATIVE = Range(min=0)
"""A finite number of at least 0 (seconds, variances)."""
MIN_TRIAL_S = 0.5
"""Seconds a trial costs at the least (a fresh trial process, build and warm-up): a budget
below the pilot's trials at this cost is refused before any trial starts."""
MAD_TO_SD = 1.4826
"""Standard deviation over median absolute deviation for Gaussian samples."""
MIN_REPEATS = 2
"""Fewest design repeats: fewer could not give an interval of their own."""
MEDIAN_EFFICIENCY = math.pi / 2
"""Variance of a median over that of a mean of n Gaussian samples (large n): the report reduces
each trial to its median iteration time."""


@dataclass(frozen=True)
class BudgetConfig:
    """`run --budget`: machine minutes per cell (one model on one device, all its modes, pilot
    included), and the pilot's repeats and timed iterations per trial."""

    minutes: float
    pilot_repeats: int = 2
    pilot_iterations: int = 20
    max_iterations: int = 100_000

    def __post_init__(self) -> None:
        require("budget", self.minutes, Range(min=0, min_open=True))
        require("pilot_repeats", self.pilot_repeats, Range(integer=True, min=2))
        require("pilot_iterations", self.pilot_iterations, COUNT)
        require("max_iterations", self.max_iterations, Range(integer=True, min=1))

    @property
    def seconds(self) -> float:
        """The budget per cell in seconds."""
        return self.minutes * 60.0

    def least_minutes(self, modes: int) -> float:
        """The smallest budget (minutes) that could fit the pilot and the fewest design repeats
        of `modes` trials each at MIN_TRIAL_S seconds per trial."""
        return (self.pilot_repeats + MIN_REPEATS) * modes * MIN_TRIAL_S / 60.0

    def check(self, modes: int) -> None:
        """A usage error when the budget cannot fit even the pilot and MIN_REPEATS repeats."""
        least = self.least_minutes(modes)
        if self.minutes < least:
            raise ParameterError(
                "budget",
                "({minutes:g} min) is below what the pilot and {fewest} repeats of {modes} "
                "mode(s) need at {per:g} s a trial: give at least {least:.2g}",
                minutes=self.minutes,
                fewest=MIN_REPEATS,
                modes=modes,
                per=MIN_TRIAL_S,
                least=least,
            )


@dataclass(frozen=True)
class PilotEstimate:
    """What the pilot says about one cell: o (s a trial outside its timed iterations), t (s an
    iteration), s1^2 and s2^2 of the log ratio (unitless), the mean log ratio, the pilot's shape
    and its cost (machine s of the cell)."""

    overhead_s: float
    iteration_s: float
    between_var: float
    within_var: float
    mean_log_ratio: float
    repeats: int
    iterations: int
    modes: int

    def __post_init__(self) -> None:
        require("overhead_s", self.overhead_s, NOT_NEGATIVE)
        require("iteration_s", self.iteration_s, POSITIVE)
        require("between_var", self.between_var, NOT_NEGATIVE)
        require("within_var", self.within_var, NOT_NEGATIVE)
        require("mean_log_ratio", self.mean_log_ratio, Range())
        require("repeats", self.repeats, COUNT)
        require("iterations", self.iterations, COUNT)
        require("modes", self.modes, Range(integer=True, min=2))

    @property
    def cost_s(self) -> float:
        """Machine seconds the pilot cost the cell (`repeat_cost_s` times its repeats)."""
        return self.repeats * repeat_cost_s(
            self.iterations, self.modes, self.overhead_s, self.iteration_s
        )


@dataclass(frozen=True)
class Design:
    """The chosen design of one cell: timed iterations per trial, design repeats (after the
    pilot's), the expected 95 % half-width (pp) over pilot and design pairs, and the machine
    seconds of the design and of the pilot."""

    iterations: int
    repeats: int
    pilot_repeats: int
    expected_half_width_pp: float
    cost_s: float
    pilot_cost_s: float

    def __post_init__(self) -> None:
        require("iterations", self.iterations, COUNT)
        require("repeats", self.repeats, Range(integer=True, min=MIN_REPEATS))
        require("pilot_repeats", self.pilot_repeats, NON_NEGATIVE)
        require("cost_s", self.cost_s, NOT_NEGATIVE)
        require("pilot_cost_s", self.pilot_cost_s, NOT_NEGATIVE)

    @property
    def total_repeats(self) -> int:
        """Paired repeats of the final interval: the pilot's and the design's."""
        return self.pilot_repeats + self.repeats

    def line(self) -> str:
        """One line for the user."""
        return (
            f"{self.iterations} iterations x {self.repeats} repeats (after the pilot's "
            f"{self.pilot_repeats}), expected 95 % CI +-{self.expected_half_width_pp:.2f} pp; "
            f"{(self.cost_s + self.pilot_cost_s) / 60:.2f} machine min with the pilot"
        )


def repeat_cost_s(iterations: int, modes: int, overhead_s: float, iteration_s: float) -> float:
    """Machine seconds of one repeat: `modes` trials of o + n t seconds each."""
    return modes * (overhead_s + iterations * iteration_s)


def mean_variance(repeats: int, iterations: int, between_var: float, within_var: float) -> float:
    """Var(mean d) = s1^2 / r + s2^2 / (r n) (log ratio squared, unitless)."""
    return between_var / repeats + within_var / (repeats * iterations)


def optimal_iterations(
    overhead_s: float, iteration_s: float, between_var: float, within_var: float
) -> float:
    """n* = sqrt(o s2^2 / (t s1^2)) (iterations, real): inf when s1^2 = 0 < s2^2, 0 when s2^2 = 0
    (then one iteration is as good as any)."""
    if within_var == 0:
        return 0.0
    if between_var == 0:
        return math.inf
    return math.sqrt(overhead_s * within_var / (iteration_s * between_var))


def most_repeats(budget_s: float, iterations: int, modes: int, o: float, t: float) -> int:
    """The most repeats of `iterations` that fit `budget_s` machine seconds."""
    return max(math.floor(budget_s / repeat_cost_s(iterations, modes, o, t) + 1e-9), 0)


def most_iterations(budget_s: float, repeats: int, modes: int, o: float, t: float) -> int:
    """The most iterations per trial with which `repeats` repeats fit `budget_s` (0: none)."""
    return max(math.floor((budget_s / (repeats * modes) - o) / t + 1e-9), 0)


def kalibera_jones(
    left_s: float, estimate: PilotEstimate, max_iterations: int = 100_000
) -> tuple[int, int]:
    """(n, r) that minimise `mean_variance` for `left_s` machine seconds of the cell.

    n = n* (`optimal_iterations`; floor or ceil, whichever gives the smaller variance) capped so
    that MIN_REPEATS repeats fit and at `max_iterations`; r = the most repeats that fit; then n
    is raised as far as those r repeats still fit, spending what is left. Raises ParameterError
    (budget) when not even MIN_REPEATS repeats of one iteration fit.
    """
    o, t, modes = estimate.overhead_s, estimate.iteration_s, estimate.modes
    s1, s2 = estimate.between_var, estimate.within_var
    cap = min(most_iterations(left_s, MIN_REPEATS, modes, o, t), max_iterations)
    if cap < 1:
        raise ParameterError(
            "budget",
            "({minutes:.2f} min) leaves no room for {fewest} repeats after the pilot, which "
            "cost {pilot:.2f} min a cell: give at least {least:.2f}",
            minutes=(left_s + estimate.cost_s) / 60,
            fewest=MIN_REPEATS,
            pilot=estimate.cost_s / 60,
            least=(estimate.cost_s + MIN_REPEATS * repeat_cost_s(1, modes, o, t)) / 60,
        )
    best = optimal_iterations(o, t, s1, s2)
    low = min(max(math.floor(best) if math.isfinite(best) else cap, 1), cap)

    def variance(n: int) -> float:
        return mean_variance(most_repeats(left_s, n, modes, o, t), n, s1, s2)

    n = min(sorted({low, min(low + 1, cap)}), key=variance)
    r = most_repeats(left_s, n, modes, o, t)
    return min(max(most_iterations(left_s, r, modes, o, t), n), max_iterations), r


def choose_design(
    estimate: PilotEstimate, budget_s: float, max_iterations: int = 100_000
) -> Design:
    """The design for what is left of `budget_s` (machine s of the cell) after the pilot.

    It starts from `kalibera_jones` (n, r), which minimises the variance alone; with few pairs
    the t critical value widens the interval too, so it then tries each larger r (with the most
    iterations that still fit) and keeps the (n, r) of the smallest `expected_half_width_pp`.
    """
    o, t, modes = estimate.overhead_s, estimate.iteration_s, estimate.modes
    left = budget_s - estimate.cost_s
    n, r = kalibera_jones(left, estimate, max_iterations)
    repeats = np.arange(r, max(most_repeats(left, 1, modes, o, t), r) + 1)
    iterations = np.minimum(
        np.floor((left / (repeats * modes) - o) / t + 1e-9), max_iterations
    ).astype(int)
    iterations[0] = n
    fits = iterations >= 1
    halves = half_widths_pp(estimate, repeats[fits], iterations[fits])
    pick = int(np.argmin(halves))
    n, r = int(iterations[fits][pick]), int(repeats[fits][pick])
    cost = r * repeat_cost_s(n, modes, o, t)
    return Design(n, r, estimate.repeats, float(halves[pick]), cost, estimate.cost_s)


def expected_half_width_pp(estimate: PilotEstimate, repeats: int, iterations: int) -> float:
    """The expected upper half-width (pp) of the report's 95 % t interval over the pilot's and
    `repeats` design pairs of `iterations` (`half_widths_pp` for one design)."""
    return float(half_widths_pp(estimate, np.array([repeats]), np.array([iterations]))[0])


def half_widths_pp(
    estimate: PilotEstimate, repeats: np.ndarray, iterations: np.ndarray
) -> np.ndarray:
    """Expected upper half-widths (pp), vectorised over designs: the unweighted mean of the r0
    pilot pairs of n0 iterations and r design pairs of n has variance
    (r0 (s1^2 + s2^2 / n0) + r (s1^2 + s2^2 / n)) / (r0 + r)^2; the half-width is
    t_{0.975, r0 + r - 1} times its root, mapped through exp at the pilot's mean log ratio."""
    s1, s2 = estimate.between_var, estimate.within_var
    r0, n0 = estimate.repeats, estimate.iterations
    r = np.asarray(repeats, dtype=float)
    n = np.asarray(iterations, dtype=float)
    pairs = r0 + r
    var = (r0 * (s1 + s2 / n0) + r * (s1 + s2 / n)) / pairs**2
    critical = stats.t.ppf(0.5 + CONFIDENCE / 2, pairs - 1)
    return 100.0 * math.exp(estimate.mean_log_ratio) * np.expm1(critical * np.sqrt(var))


def trial_overheads(trials: pd.DataFrame) -> pd.Series:
    """Seconds each trial cost outside its timed iterations, indexed like `trials`.

    `trials` has device, wall_s (s, as stored: measured inside the trial process, so without the
    interpreter's start and the framework's import), finished_at (ISO time of the store write)
    and timed_s (s, the sum of its iteration times). A trial's cost is the gap since the trial
    before it on its device finished when that gap is at most 2 wall_s + 10 s (else the sweep
    was interrupted between them), never less than wall_s; minus timed_s.
    """
    finished = pd.to_datetime(trials["finished_at"], utc=True, format="ISO8601")
    wall = trials["wall_s"].astype(float)
    frame = trials.assign(_finished=finished).sort_values("_finished")
    gap = frame.groupby("device", sort=False)["_finished"].diff().dt.total_seconds()
    gap = gap.reindex(trials.index)
    plausible = gap.notna() & (gap <= 2 * wall + 10)
    cost = np.where(plausible, np.maximum(gap.fillna(0.0), wall), wall)
    return (pd.Series(cost, index=trials.index) - trials["timed_s"].astype(float)).clip(lower=0)


def estimate_pilot(
    trials: pd.DataFrame, times: pd.DataFrame, baseline: str, modes: int
) -> PilotEstimate:
    """The pilot's estimates of one model from its successful timing trials (pure).

    `trials`: id, mode, device, repeat, wall_s (s), finished_at, iterations; `times`: trial_id,
    time_ms (ms). Per device, a repeat pairs each mode's trial with the `baseline` trial: d =
    log(median mode / median baseline); s2^2 = (var log t of the mode's iterations + the
    baseline's) times MEDIAN_EFFICIENCY, averaged over pairs, each var log t taken as
    (MAD_TO_SD MAD)^2, robust to the odd slow iteration as the median is; s1^2 = max(var d
    (ddof 1, within a device, averaged over devices) - s2^2 / n0, 0); of several modes the one
    with the largest var d decides. o is the median of `trial_overheads` and t the mean
    iteration time, each on
    the slowest device. Raises UsageError when no mode has two complete pairs on a device.
    """
    per = times.assign(log_t=np.log(times["time_ms"].astype(float) / 1000.0))
    grouped = per.groupby("trial_id")
    spread = per["log_t"] - grouped["log_t"].transform("median")
    mad = spread.abs().groupby(per["trial_id"]).median()
    summary = pd.DataFrame(
        {
            "log_median": np.log(grouped["time_ms"].median() / 1000.0),
            "log_var": (MAD_TO_SD * mad) ** 2,
            "timed_s": grouped["time_ms"].sum() / 1000.0,
            "mean_s": grouped["time_ms"].mean() / 1000.0,
        }
    )
    data = trials.merge(summary, left_on="id", right_index=True)
    if data.empty:
        raise UsageError("the pilot has no successful timing trial to design from")
    data = data.assign(overhead_s=trial_overheads(data))
    devices = data.groupby("device")
    overhead = float(devices["overhead_s"].median().max())
    iteration = float(devices["mean_s"].mean().max())
    n0 = int(data["iterations"].min())
    base = data[data["mode"] == baseline].set_index(["device", "repeat"])
    worst: tuple[float, float, float] | None = None
    for mode in sorted(set(data["mode"]) - {baseline}):
        other = data[data["mode"] == mode].set_index(["device", "repeat"])
        pairs = other.merge(base, left_index=True, right_index=True, suffixes=("_m", "_b"))
        if pairs.empty:
            continue
        d = pairs["log_median_m"] - pairs["log_median_b"]
        per_device = d.groupby(level="device").var(ddof=1).dropna()
        if per_device.empty:
            continue
        var_d = float(per_device.mean())
        within = float((pairs["log_var_m"] + pairs["log_var_b"]).mean()) * MEDIAN_EFFICIENCY
        if worst is None or var_d > worst[0]:
            worst = (var_d, within, float(d.mean()))
    if worst is None:
        raise UsageError("the pilot has no mode with two complete paired repeats on a device")
    var_d, within, mean = worst
    return PilotEstimate(
        overhead_s=overhead,
        iteration_s=iteration,
        between_var=max(var_d - within / n0, 0.0),
        within_var=within,
        mean_log_ratio=mean,
        repeats=int(data["repeat"].nunique()),
        iterations=n0,
        modes=modes,
    )


@dataclass
class CellDesign:
    """One model's pilot estimate and design (None when the pilot could not give one: `why`)."""

    framework: str
    workload: str
    estimate: PilotEstimate | None = None
    design: Design | None = None
    why: str | None = None

    def line(self) -> str:
        """One line for the user."""
        name = f"{self.framework}/{self.workload}"
        if self.design is None or self.estimate is None:
            return f"budget: {name}: no design ({self.why})"
        e = self.estimate
        return (
            f"budget: {name}: pilot o={e.overhead_s:.2f} s/trial, t={e.iteration_s * 1000:.2f} "
            f"ms/iteration, s1^2={e.between_var:.2e}, s2^2={e.within_var:.2e}; design: "
            f"{self.design.line()}"
        )


@dataclass
class BudgetRun:
    """What `run_budget` did: the pilot's and the designs' measurements, each model's design,
    and the final overhead rows (overhead_pct, ci_low_pct, ci_high_pct, half_width_pp: pp)."""

    pilot: Measurement
    cells: list[CellDesign] = field(default_factory=list)
    designs: list[Measurement] = field(default_factory=list)
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def outcome(self) -> RunOutcome:
        """The counts and failures of every trial, pilot included."""
        total = RunOutcome()
        for part in [self.pilot, *self.designs]:
            total.merge(part.outcome)
        return total

    def summary(self) -> list[str]:
        """Lines for the user: the half-width each row reached."""
        lines = []
        for row in self.rows.itertuples():
            lines.append(
                f"budget: {row.framework}/{row.workload} {row.gpu_name or row.gpu_arch} "
                f"{row.mode} vs {row.baseline_mode}: {row.overhead_pct:+.2f} % "
                f"(95 % CI {row.ci_low_pct:+.2f} to {row.ci_high_pct:+.2f} %), "
                f"+-{row.half_width_pp:.2f} pp reached over {row.n_pairs} paired repeat(s)"
            )
        return lines


def check_budget(config: BudgetConfig, planned: PlannedSweep, launcher: Launcher) -> None:
    """Usage errors, before any trial, for a budget that cannot go with this sweep or launcher."""
    if isinstance(launcher, ClusterLauncher) and not launcher.waits:
        raise ParameterError("budget", "needs the pilot's results, so it cannot go with {no_wait}")
    if planned.spec.collectors != ("timing",):
        raise ParameterError(
            "budget",
            "designs timing trials only, so it cannot go with {collectors} other than timing "
            "(run the kernel collectors on their own)",
        )
    if len(planned.spec.modes) < 2:
        raise ParameterError("budget", "needs two modes or more to pair (see {modes})")
    config.check(len(planned.spec.modes))


def run_budget(
    model: str,
    framework: str,
    modes: str,
    launcher: Launcher,
    config: BudgetConfig,
    db: str | Path,
    progress: ProgressBar,
    force: bool = False,
    on_note: Callable[[str], None] | None = None,
    **sizes: Any,
) -> BudgetRun:
    """The pilot, then each model's design, through `measure` (see the module); `sizes` are
    further SweepSpec fields (warmup, batch_size, image_size, seed, workload_args, timeout_s,
    collectors), `on_note` gets the sweep's notes and each design's line."""
    note = on_note or (lambda _text: None)
    pilot_sizes = {
        **sizes,
        "repeats": config.pilot_repeats,
        "iterations": config.pilot_iterations,
    }
    planned = plan_measurement(model, framework, modes, launcher, **pilot_sizes)
    check_budget(config, planned, launcher)
    spec = planned.spec
    result = BudgetRun(measure(planned, db, launcher, progress, force=force, on_note=note))
    keys = _keys(planned.plan)
    for workload in spec.workloads:
        cell = _design(spec, workload, db, config)
        result.cells.append(cell)
        note(cell.line())
        if cell.design is None:
            continue
        part = _design_spec(spec, workload, cell.design)
        design_plan = PlannedSweep(part, plan_sweep(part))
        keys |= _keys(design_plan.plan)
        result.designs.append(
            measure(design_plan, db, launcher, progress, force=force, on_note=note)
        )
    result.rows = final_rows(db, keys)
    return result


def _design(
    spec: SweepSpec, workload: tuple[str, str], db: str | Path, config: BudgetConfig
) -> CellDesign:
    """One model's design from its stored pilot trials."""
    from nnr_profile.store.database import Store

    framework, name = workload
    cell = CellDesign(framework, name)
    keys = {
        c.cell_key
        for cells in plan_sweep(_only(spec, workload)).values()
        for c in cells
        if c.collector == "timing"
    }
    with Store(db) as store:
        trials = store.trials()
        trials = trials[trials["cell_key"].isin(keys) & (trials["status"] == "ok")]
        times = store.timing_times([int(i) for i in trials["id"]])
    names = [m.name for m in spec.modes]
    baseline = "default" if "default" in names else names[0]
    try:
        cell.estimate = estimate_pilot(trials, times, baseline, len(spec.modes))
    except UsageError as exc:
        cell.why = str(exc)
        return cell
    cell.design = choose_design(cell.estimate, config.seconds, config.max_iterations)
    return cell


def _only(spec: SweepSpec, workload: tuple[str, str]) -> SweepSpec:
    """`spec` for one of its workloads (with only the workload arguments it declares)."""
    params = get_workload(*workload).params
    args = {key: value for key, value in spec.workload_args.items() if key in params}
    return replace(spec, workloads=(workload,), workload_args=args)


def _design_spec(spec: SweepSpec, workload: tuple[str, str], design: Design) -> SweepSpec:
    """The design's sweep of one model: repeats numbered after the pilot's."""
    return replace(
        _only(spec, workload),
        iterations=design.iterations,
        repeats=design.total_repeats,
        first_repeat=design.pilot_repeats,
    )


def _keys(plan: dict[int | None, list[Any]]) -> set[str]:
    return {c.cell_key for cells in plan.values() for c in cells if c.collector == "timing"}


def final_rows(db: str | Path, keys: set[str]) -> pd.DataFrame:
    """The report's overhead rows over the trials of `keys` (pilot and design cells), with
    half_width_pp: the wider side of the 95 % t interval from the estimate (pp)."""
    from nnr_profile.reports.load import TimingReader
    from nnr_profile.reports.overhead_report import overhead_rows
    from nnr_profile.store.database import Store

    with Store(db) as store:
        trials = store.trials()
        trials = trials[trials["cell_key"].isin(keys)]
        per_trial, _ = TimingReader().read(store, trials)
    table = overhead_rows(per_trial, trials)
    if table.empty:
        return table
    upper = table["ci_high_pct"].astype(float) - table["overhead_pct"].astype(float)
    lower = table["overhead_pct"].astype(float) - table["ci_low_pct"].astype(float)
    return table.assign(half_width_pp=np.fmax(upper, lower))
