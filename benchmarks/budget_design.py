"""Budget design against the default design at equal machine time, by simulation (no training).

Each trial is drawn from the two-level model of `nnr_profile.studies.budget`: a trial of mode m
has its own level log(base_m) + b (b ~ N(0, between_sd^2), drawn per trial) and its iterations
are lognormal around it (sd `within_sd` of log t); a trial costs `overhead` s outside its timed
iterations of `iteration` s. The budget design runs the real pilot estimate
(`estimate_pilot` on drawn iterations and finish times) and `choose_design`; both designs are
judged with the report's paired t interval (`reports.stats.paired_estimate`) on the per-trial
medians. The default design is 100 iterations with as many repeats as the same machine time
buys (3 repeats at its own cost, the first row of each setting). Design trials' medians are
drawn from their normal approximation (log median ~ N(level, pi/2 within_sd^2 / n)).

    python benchmarks/budget_design.py [--sweeps 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from nnr_profile.reports.stats import paired_estimate
from nnr_profile.studies.budget import BudgetConfig, choose_design, estimate_pilot

OVERHEAD_S = 5.0
ITERATION_S = 0.020
TRUE_RATIO = 1.20
SETTINGS = [(0.010, 0.05), (0.030, 0.02), (0.002, 0.20), (0.0, 0.10)]
"""(between_sd, within_sd) of log iteration time: between trials, within a trial."""
DEFAULT_ITERATIONS = 100
MODES = 2


def pair_medians(rng, repeats, iterations, between, within):
    """(baseline, mode) log medians of `repeats` pairs of `iterations` (normal approximation)."""
    sd = math.sqrt(math.pi / 2) * within / math.sqrt(iterations)
    levels = np.log([1.0, TRUE_RATIO]) + rng.normal(0, between, (repeats, 2))
    return levels + rng.normal(0, sd, (repeats, 2))


def interval(log_medians):
    """(half-width pp of the upper side, covered) of the paired t interval."""
    d = log_medians[:, 1] - log_medians[:, 0]
    est = paired_estimate(np.array([d.size]), np.array([d.mean()]), np.array([d.std(ddof=1)]))
    high, low, ratio = est.high[0], est.low[0], est.ratio[0]
    return 100 * (high - ratio), bool(low <= TRUE_RATIO <= high)


def pilot(rng, config, between, within):
    """Drawn pilot trials and iterations as the store gives them, and their log medians."""
    rows, times, medians = [], [], np.zeros((config.pilot_repeats, 2))
    clock = pd.Timestamp("2026-01-01T00:00:00Z")
    n = config.pilot_iterations
    for repeat in range(config.pilot_repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for m in order:
            level = math.log([1.0, TRUE_RATIO][m]) + rng.normal(0, between)
            t = ITERATION_S * np.exp(level + rng.normal(0, within, n))
            medians[repeat, m] = np.log(np.median(t / ITERATION_S))
            clock += pd.Timedelta(seconds=OVERHEAD_S + t.sum())
            trial_id = len(rows) + 1
            rows.append(
                {
                    "id": trial_id,
                    "mode": ["default", "deterministic"][m],
                    "repeat": repeat,
                    "device": "gpu0",
                    "wall_s": 0.8 * OVERHEAD_S + t.sum(),
                    "iterations": n,
                    "finished_at": clock.isoformat(),
                }
            )
            times += [{"trial_id": trial_id, "time_ms": 1000 * x} for x in t]
    return pd.DataFrame(rows), pd.DataFrame(times), medians


def simulate(rng, budget_s, between, within, sweeps):
    """Mean half-width (pp) and coverage of (default, budget) designs, and the designs' shape."""
    config = BudgetConfig(budget_s / 60)
    repeats = max(int(budget_s // (MODES * (OVERHEAD_S + DEFAULT_ITERATIONS * ITERATION_S))), 2)
    default, budget, shapes = [], [], []
    for _ in range(sweeps):
        default.append(interval(pair_medians(rng, repeats, DEFAULT_ITERATIONS, between, within)))
        trials, times, first = pilot(rng, config, between, within)
        design = choose_design(estimate_pilot(trials, times, "default", MODES), budget_s)
        rest = pair_medians(rng, design.repeats, design.iterations, between, within)
        budget.append(interval(np.vstack([first, rest])))
        shapes.append((design.iterations, design.repeats))
    d, b = np.array(default), np.array(budget)
    n, r = np.median(np.array(shapes), axis=0)
    return repeats, d[:, 0].mean(), d[:, 1].mean(), b[:, 0].mean(), b[:, 1].mean(), n, r


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    began = time.perf_counter()
    cost3 = 3 * MODES * (OVERHEAD_S + DEFAULT_ITERATIONS * ITERATION_S)
    print(
        f"overhead {OVERHEAD_S:g} s/trial, {ITERATION_S * 1000:g} ms/iteration, true +"
        f"{100 * (TRUE_RATIO - 1):g} %, {args.sweeps} sweeps per row; budget pilot 2 x 20"
    )
    print(
        "| between sd | within sd | machine min | default: repeats x 100, half-width, "
        "coverage | budget: median n x r (+2 pilot), half-width, coverage |"
    )
    print("|---:|---:|---:|---|---|")
    for between, within in SETTINGS:
        for budget_s in (cost3, 300.0, 900.0):
            r0, dh, dc, bh, bc, n, r = simulate(rng, budget_s, between, within, args.sweeps)
            print(
                f"| {between:g} | {within:g} | {budget_s / 60:.2f} | {r0} x 100, +-{dh:.2f} pp, "
                f"{100 * dc:.1f} % | {n:.0f} x {r:.0f}, +-{bh:.2f} pp, {100 * bc:.1f} % |"
            )
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
