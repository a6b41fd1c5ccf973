"""Do the report's 95 % intervals and p-values hold their nominal rates? A simulation.

Simulates sweeps with realistic timing noise, shapes them like the store's iteration table (one
row per timed iteration; every simulated sweep is its own cell), runs the report's own
`overhead_table` on them and prints, per trial count, the CI coverage, the false-positive rate
(p < 0.05 with no true overhead), the power and the mean CI width. Targets: coverage 93-97 %,
false-positive rate <= 6 %. Noise, per simulated sweep:

- per-iteration lognormal jitter (sigma 3 %), AR(1)-correlated within a trial (rho 0.5);
- a trial-level random effect (lognormal, sigma 3 %): the trial's process, clocks, placement;
- slow drift of the machine's speed over the sweep: a random walk, 1 % per trial slot;
- rare outliers: 1 % of iterations 1.5-3x slower (interrupts, GC), 2 % of trials 5-20 %
  slower throughout (a neighbour process);
- trial order as `nnr-profile run` plans it: baseline then mode in even repeats, mode then
  baseline in odd ones.

A second table checks precision on demand (`run --target-ci PP`) with the interval it stops
on, `nnr_profile.reports.stats.sequential_interval`: each simulated sweep starts with 3 repeats
and gets one more until the interval's half-width is <= PP on both sides or 20 repeats, for PP
2, 3 and 5, no overhead and +20 %, and four kinds of pairs (the store model above, Gaussian,
Student t3, and 5 % outlier pairs). It prints the coverage at the stopping repeat, the share
excluding ratio 1 (false positives with no overhead), the mean repeats against the fixed design
of the same mean half-width, and beside them the old rule (the fixed t interval after every
look) and Lai's t confidence sequence on the same draws. `--derive` recomputes the calibrated
constant of the sequential interval (the worst case over starts, limits and target / sd).

    python benchmarks/stats_calibration.py                 # 2000 sweeps per row (~3 min, 2 cores)
    python benchmarks/stats_calibration.py --sims 300      # quick look
    python benchmarks/stats_calibration.py --quick         # the test's sequential table (~10 s)
    python benchmarks/stats_calibration.py --derive        # SEQUENTIAL_DF_DIVISOR (~5 min)
    python benchmarks/stats_calibration.py --alternatives 200  # also the methods not chosen
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from nnr_profile.reports.overhead import overhead_table
from nnr_profile.reports.stats import SEQUENTIAL_DF_DIVISOR, paired_estimate, sequential_bounds
from nnr_profile.studies.precision import DEFAULT_MAX_REPEATS, needs_more

TRIAL_COUNTS = (2, 3, 5, 10)
TRUE_OVERHEAD = 0.20
ALPHA = 0.05


@dataclass(frozen=True)
class Noise:
    """Noise model of a simulated sweep (fractions of the iteration time)."""

    iteration_sigma: float = 0.03
    iteration_rho: float = 0.5
    trial_sigma: float = 0.03
    drift_step: float = 0.01
    outlier_iteration_rate: float = 0.01
    outlier_trial_rate: float = 0.02


def simulate_times(
    sims: int,
    repeats: int,
    overhead: float,
    iterations: int,
    noise: Noise,
    rng: np.random.Generator,
) -> np.ndarray:
    """Iteration times (ms), shape (sims, repeats, 2 modes, iterations); mode 1 is slower."""
    shape = (sims, repeats, 2, iterations)
    slots = repeats * 2
    drift = np.cumsum(rng.normal(0, noise.drift_step, (sims, slots)), axis=1)
    drift = drift.reshape(sims, repeats, 2)
    drift[:, 1::2, :] = drift[:, 1::2, ::-1]  # odd repeats run the mode first
    log_t = np.log(10.0) + drift[..., None]
    log_t = log_t + rng.normal(0, noise.trial_sigma, (sims, repeats, 2, 1))
    slow_trial = rng.random((sims, repeats, 2, 1)) < noise.outlier_trial_rate
    log_t = log_t + slow_trial * np.log1p(rng.uniform(0.05, 0.20, (sims, repeats, 2, 1)))
    white = rng.normal(0, noise.iteration_sigma, shape)
    jitter = np.empty(shape)
    jitter[..., 0] = white[..., 0]
    scale = np.sqrt(1 - noise.iteration_rho**2)
    for i in range(1, iterations):
        jitter[..., i] = noise.iteration_rho * jitter[..., i - 1] + scale * white[..., i]
    log_t = log_t + jitter
    spikes = rng.random(shape) < noise.outlier_iteration_rate
    log_t = log_t + spikes * np.log(rng.uniform(1.5, 3.0, shape))
    log_t[:, :, 1, :] += np.log1p(overhead)
    return np.exp(log_t)


def store_frame(times: np.ndarray) -> pd.DataFrame:
    """`times` as the store's iteration table: one row per iteration, one cell per sweep."""
    sims, repeats, modes, iterations = times.shape
    trials = sims * repeats * modes
    sim = np.repeat(np.arange(sims), repeats * modes * iterations)
    repeat = np.tile(np.repeat(np.arange(repeats), modes * iterations), sims)
    mode = np.tile(np.repeat(np.arange(modes), iterations), sims * repeats)
    constant = {
        "framework": "torch",
        "workload_args": "{}",
        "device": "gpu0",
        "gpu_arch": "Simulated",
        "gpu_name": "Simulated GPU",
        "host": "sim",
    }
    frame = pd.DataFrame(
        {
            "trial_id": np.repeat(np.arange(trials), iterations),
            "workload": pd.Categorical.from_codes(sim, [f"sim{i:05d}" for i in range(sims)]),
            "batch_size": 32,
            "image_size": np.nan,
            "mode": pd.Categorical.from_codes(mode, ["default", "deterministic"]),
            "repeat": repeat,
            "iteration": np.tile(np.arange(iterations), trials),
            "time_ms": times.reshape(-1),
        }
    )
    for column, value in constant.items():
        frame[column] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), [value])
    return frame


def previous_method(times: np.ndarray, rng: np.random.Generator, resamples: int = 1000):
    """The replaced method, per sweep: pooled Mann-Whitney p and hierarchical bootstrap CI."""
    p_values, lows, highs = [], [], []
    for sweep in times:
        base, mode = sweep[:, 0, :], sweep[:, 1, :]
        p_values.append(stats.mannwhitneyu(mode.ravel(), base.ravel()).pvalue)
        ratio = _hierarchical_medians(mode, resamples, rng) / _hierarchical_medians(
            base, resamples, rng
        )
        low, high = np.quantile(ratio, [ALPHA / 2, 1 - ALPHA / 2])
        lows.append(low)
        highs.append(high)
    return np.array(p_values), np.array(lows), np.array(highs)


def _hierarchical_medians(trials: np.ndarray, resamples: int, rng: np.random.Generator):
    count, width = trials.shape
    rows = rng.integers(0, count, (resamples, count, 1))
    cols = rng.integers(0, width, (resamples, count, width))
    return np.median(trials[rows, cols].reshape(resamples, -1), axis=1)


def calibrate(
    trial_counts: tuple[int, ...], sims: int, iterations: int, noise: Noise, seed: int
) -> pd.DataFrame:
    """Coverage, false-positive rate, power and CI width of the report's statistics."""
    rng = np.random.default_rng(seed)
    rows = []
    for repeats in trial_counts:
        outcome = {}
        for overhead in (0.0, TRUE_OVERHEAD):
            table = pd.concat(
                overhead_table(
                    store_frame(simulate_times(n, repeats, overhead, iterations, noise, rng))
                )
                for n in _batches(sims, repeats * iterations)
            )
            truth = overhead * 100
            covered = (table["ci_low_pct"] <= truth) & (truth <= table["ci_high_pct"])
            outcome[overhead] = {
                "coverage_pct": 100 * covered.mean(),
                "positive_pct": 100 * (table["p_value"] < ALPHA).mean(),
                "width_pp": (table["ci_high_pct"] - table["ci_low_pct"]).mean(),
                "bias_pp": (table["overhead_pct"] - truth).mean(),
                "rmse_pp": np.sqrt(((table["overhead_pct"] - truth) ** 2).mean()),
                "medians_rmse_pp": np.sqrt(
                    (
                        (100 * (table["median_ms"] / table["baseline_median_ms"] - 1) - truth) ** 2
                    ).mean()
                ),
            }
        null, effect = outcome[0.0], outcome[TRUE_OVERHEAD]
        rows.append(
            {
                "trials": str(repeats),
                "coverage_null_pct": null["coverage_pct"],
                "coverage_20pct": effect["coverage_pct"],
                "false_positive_pct": null["positive_pct"],
                "power_20pct": effect["positive_pct"],
                "ci_width_pp": effect["width_pp"],
                "bias_pp": effect["bias_pp"],
                "rmse_pp": effect["rmse_pp"],
                "rmse_ratio_of_medians_pp": effect["medians_rmse_pp"],
            }
        )
    return pd.DataFrame(rows)


SEQUENTIAL_TARGETS_PP = (2.0, 3.0, 5.0)
FIRST_REPEATS = 3
"""`run --repeats` default: the first look of `--target-ci`."""
FIXED_MOST = 50
"""Repeats simulated per sweep, so the fixed design of a target can need more than max_repeats."""
PAIR_SD = 0.04
"""Standard deviation of the simulated paired log ratios (close to the store model's 4.4 %)."""
SCENARIOS = ("store model", "gaussian", "t3", "outlier pairs")
LAI_RHO = 0.3
QUICK = (3000, 1000, 20)
"""--quick (and the test): sweeps per row, store-model sweeps per row, iterations per trial."""
"""Mixture precision of Lai's t confidence sequence (the method not chosen), tuned for n 5-20."""


def pair_log_ratios(
    scenario: str,
    sims: int,
    repeats: int,
    overhead: float,
    rng: np.random.Generator,
    iterations: int = 30,
) -> np.ndarray:
    """Paired log ratios d, shape (sims, repeats): one row per simulated sweep, in run order.

    `store model`: log ratio of trial medians of `simulate_times` (drift, outlier iterations
    and trials, AR(1) jitter). `gaussian`: N(log(1 + overhead), PAIR_SD). `t3`: Student t with
    3 degrees of freedom scaled to sd PAIR_SD (heavy tails). `outlier pairs`: N(., 3 %) plus, in
    5 % of pairs, one trial 5-20 % slower (the mode's or the baseline's, at random).
    """
    center = np.log1p(overhead)
    shape = (sims, repeats)
    if scenario == "store model":
        medians = np.median(simulate_times(sims, repeats, overhead, iterations, Noise(), rng), -1)
        return np.log(medians[:, :, 1]) - np.log(medians[:, :, 0])
    if scenario == "gaussian":
        return center + rng.normal(0, PAIR_SD, shape)
    if scenario == "t3":
        return center + rng.standard_t(3, shape) * PAIR_SD / np.sqrt(3)
    if scenario == "outlier pairs":
        slow = (rng.random(shape) < 0.05) * np.log(rng.uniform(1.05, 1.20, shape))
        return center + rng.normal(0, 0.03, shape) + slow * rng.choice([-1, 1], shape)
    raise ValueError(scenario)


def running_moments(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean, sd) of d's first 1..repeats pairs per sweep, each of shape (sims, repeats)."""
    n = np.arange(1, d.shape[1] + 1, dtype=float)[None, :].repeat(d.shape[0], 0)
    mean = np.cumsum(d, axis=1) / n
    squares = np.cumsum((d - d[:, :1]) ** 2, axis=1) - n * (mean - d[:, :1]) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.maximum(squares, 0) / (n - 1))
    return n, mean, sd


def lai_bounds(n: np.ndarray, mean: np.ndarray, sd: np.ndarray, confidence: float = 0.95):
    """Lai's t confidence sequence (Ann. Statist. 4, 265-280, 1976), anytime-valid for Gaussian
    d: the scale-invariant mixture likelihood ratio with an N(0, 1 / LAI_RHO) prior on mean / sd,
    {m: sqrt(rho / (n + rho)) ((V + D) / (V + D rho / (n + rho)))^(n / 2) < 1 / alpha}, V the
    sum of squares about the mean, D = n (mean - m)^2. Ratio bounds; infinite when unbounded."""
    alpha, rho = 1 - confidence, LAI_RHO
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k = ((n + rho) / rho) ** (1 / n) * alpha ** (-2 / n)
        room = 1 - k * rho / (n + rho)
        r = np.where(room > 0, (k - 1) / room, np.inf)
        half = np.where(n >= 2, np.sqrt(r * (n - 1) / n) * sd, np.nan)
        return np.exp(mean - half), np.exp(mean + half)


def interval_bounds(method: str, n: np.ndarray, mean: np.ndarray, sd: np.ndarray):
    """(low, high) ratio bounds at every prefix: 'sequential' (the report's, for --target-ci),
    't' (the fixed-size t interval, the old rule) or 'lai' (the confidence sequence)."""
    if method == "sequential":
        return sequential_bounds(n, mean, sd)
    if method == "t":
        est = paired_estimate(n, mean, sd)
        return est.low, est.high
    return lai_bounds(n, mean, sd)


def half_width_pp(mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The larger side of the interval around exp(mean), in percentage points (as half_widths)."""
    ratio = np.exp(mean)
    return 100 * np.fmax(high - ratio, ratio - low) + np.where(np.isnan(high), np.nan, 0)


def stop_repeat(width_pp: np.ndarray, target_pp: float, first: int, most: int) -> np.ndarray:
    """Index (repeats - 1) where `--target-ci` stops: the first look from `first` repeats on whose
    half-width is <= target_pp (NaN is never), else `most`."""
    hit = width_pp[:, first - 1 : most] <= target_pp
    hit[:, -1] = True
    return np.argmax(hit, axis=1) + first - 1


def sequential_stopping(
    sims: int,
    store_sims: int,
    iterations: int,
    seed: int,
    targets: tuple[float, ...] = SEQUENTIAL_TARGETS_PP,
    scenarios: tuple[str, ...] = SCENARIOS,
    first: int = FIRST_REPEATS,
    most: int = DEFAULT_MAX_REPEATS,
) -> pd.DataFrame:
    """Precision on demand under the sequential interval, the old t rule and Lai's sequence.

    Per scenario, true overhead (0 and 20 %) and target: every simulated sweep starts with
    `first` repeats and gets one more until its interval's half-width is <= target pp on both
    sides, or `most` repeats. Columns: coverage_pct (the sequential interval at the stopping
    repeat covers the true ratio), excludes_1_pct (it excludes ratio 1: the false-positive rate
    at 0 %, the power at 20 %), mean_repeats, reached_pct (stopped on the target, not at
    `most`), fixed_repeats (the smallest fixed size whose mean t half-width is <= target; NaN
    above FIXED_MOST), repeats_vs_fixed (mean_repeats / fixed_repeats), t_rule_coverage_pct
    and t_rule_repeats (the same stopping rule on the fixed t interval: the old --target-ci),
    lai_coverage_pct and lai_repeats (Lai's t confidence sequence). All draws are shared.
    """
    rng = np.random.default_rng(seed + 1)
    rows = []
    for scenario in scenarios:
        count = store_sims if scenario == "store model" else sims
        for overhead in (0.0, TRUE_OVERHEAD):
            d = pair_log_ratios(scenario, count, FIXED_MOST, overhead, rng, iterations)
            n, mean, sd = running_moments(d)
            bounds = {m: interval_bounds(m, n, mean, sd) for m in ("sequential", "t", "lai")}
            widths = {m: half_width_pp(mean, *b) for m, b in bounds.items()}
            truth = 1 + overhead
            for target in targets:
                row = {"scenario": scenario, "true_overhead_pct": 100 * overhead}
                row["target_pp"] = target
                for method, prefix in (("sequential", ""), ("t", "t_rule_"), ("lai", "lai_")):
                    at = stop_repeat(widths[method], target, first, most)
                    low, high = (b[np.arange(count), at] for b in bounds[method])
                    row[f"{prefix}coverage_pct"] = 100 * np.mean((low <= truth) & (truth <= high))
                    if method == "sequential":
                        row["excludes_1_pct"] = 100 * np.mean((low > 1) | (high < 1))
                        reached = widths[method][np.arange(count), at] <= target
                        row["reached_pct"] = 100 * reached.mean()
                    row[f"{prefix}{'mean_' if not prefix else ''}repeats"] = (at + 1).mean()
                fixed = np.flatnonzero(np.nanmean(widths["t"][:, 1:], axis=0) <= target)
                row["fixed_repeats"] = float(fixed[0] + 2) if fixed.size else np.nan
                row["repeats_vs_fixed"] = row["mean_repeats"] / row["fixed_repeats"]
                rows.append(row)
    order = [
        "scenario",
        "true_overhead_pct",
        "target_pp",
        "coverage_pct",
        "excludes_1_pct",
        "mean_repeats",
        "reached_pct",
        "fixed_repeats",
        "repeats_vs_fixed",
        "t_rule_coverage_pct",
        "t_rule_repeats",
        "lai_coverage_pct",
        "lai_repeats",
    ]
    return pd.DataFrame(rows)[order]


def stop_through_report(
    times: np.ndarray, target_pp: float, first: int, most: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(repeats, ci_low_pct, ci_high_pct) where each simulated sweep stops when the report's
    own `overhead_table(..., interval='sequential')` and `needs_more` decide, look by look."""
    sims = times.shape[0]
    stopped = np.full(sims, most)
    low = np.full(sims, np.nan)
    high = np.full(sims, np.nan)
    open_ = np.ones(sims, dtype=bool)
    for repeats in range(first, most + 1):
        table = overhead_table(store_frame(times[:, :repeats]), interval="sequential")
        table = table.sort_values("workload").reset_index(drop=True)
        done = open_ & (~needs_more(table, target_pp).to_numpy() | (repeats == most))
        stopped[done] = repeats
        low[done] = table["ci_low_pct"].to_numpy()[done]
        high[done] = table["ci_high_pct"].to_numpy()[done]
        open_ &= ~done
    return stopped, low, high


def gaussian_stopping_coverage(
    divisor: float,
    confidence: float = 0.95,
    paths: int = 100_000,
    seed: int = 7,
    firsts: tuple[int, ...] = (2, 3, 4, 5, 7, 10, 15),
    lasts: tuple[int, ...] = (10, 20, 50),
) -> tuple[float, int, int, float]:
    """(coverage, first, last, target / sd) of the worst case of the --target-ci rule for the
    t interval with (n - 1) / divisor degrees of freedom, for Gaussian pairs.

    For Gaussian d the mean of n pairs is independent of all widths up to n, so the coverage
    at the stopping repeat tau is E[2 Phi(c_tau s_tau / sd) - 1]: only the paths of the sample
    sd are simulated (chi-square increments), with no Monte-Carlo noise from the mean.
    """
    rng = np.random.default_rng(seed)
    ns = np.arange(2, FIXED_MOST + 1)
    s = np.sqrt(np.cumsum(rng.chisquare(1, (paths, ns.size)), axis=1) / (ns - 1))
    c = stats.t.ppf(0.5 + confidence / 2, (ns - 1) / divisor)
    width, covered = c * s / np.sqrt(ns), 2 * stats.norm.cdf(c * s) - 1
    worst = (1.0, 0, 0, np.nan)
    for first in firsts:
        for last in (n for n in lasts if n > first):
            for ratio in np.exp(np.linspace(np.log(0.1), np.log(2.5), 30)):
                hit = width[:, first - 2 : last - 1] <= ratio
                hit[:, -1] = True
                at = np.argmax(hit, axis=1) + first - 2
                worst = min(
                    worst, (float(covered[np.arange(paths), at].mean()), first, last, ratio)
                )
    return worst


def derive_divisor(confidence: float, paths: int = 100_000) -> tuple[float, float]:
    """(k, worst coverage): the smallest multiple of 0.05 whose worst case is >= confidence +
    0.05 pp (SEQUENTIAL_DF_DIVISOR), by bisection (the worst case grows with k)."""
    low, high = 20, 80
    while high - low > 1:
        middle = (low + high) // 2
        ok = gaussian_stopping_coverage(middle / 20, confidence, paths)[0] >= confidence + 5e-4
        low, high = (low, middle) if ok else (middle, high)
    return high / 20, gaussian_stopping_coverage(high / 20, confidence, paths)[0]


def _batches(sims: int, trial_iterations: int, rows_per_batch: int = 2_000_000) -> list[int]:
    size = max(1, rows_per_batch // (2 * trial_iterations))
    return [min(size, sims - first) for first in range(0, sims, size)]


def alternatives(
    trial_counts: tuple[int, ...], sims: int, iterations: int, noise: Noise, seed: int
) -> pd.DataFrame:
    """The same figures for methods not chosen (fewer sweeps: the pooled one is slow).

    `pooled`: the replaced method (Mann-Whitney on pooled iterations, bootstrap of trials then
    iterations). `repeat bootstrap`: percentile bootstrap over repeats of the paired log ratios.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for repeats in trial_counts:
        null = simulate_times(sims, repeats, 0.0, iterations, noise, rng)
        effect = simulate_times(sims, repeats, TRUE_OVERHEAD, iterations, noise, rng)
        null_p, null_low, null_high = previous_method(null, rng)
        _, low, high = previous_method(effect, rng)
        rows.append(_alternative_row("pooled", repeats, null_p, (null_low, null_high), (low, high)))
        boot_null, boot = _repeat_bootstrap(null, rng), _repeat_bootstrap(effect, rng)
        rows.append(_alternative_row("repeat bootstrap", repeats, None, boot_null, boot))
    return pd.DataFrame(rows)


def _repeat_bootstrap(times: np.ndarray, rng: np.random.Generator, resamples: int = 2000):
    """Percentile bootstrap CI (ratio) over repeats of d = log ratio of trial medians."""
    medians = np.median(times, axis=-1)
    d = np.log(medians[:, :, 1]) - np.log(medians[:, :, 0])
    sims, repeats = d.shape
    picks = rng.integers(0, repeats, (sims, resamples, repeats))
    means = np.take_along_axis(d[:, None, :], picks, axis=2).mean(axis=2)
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2], axis=1)
    return np.exp(low), np.exp(high)


def _alternative_row(method, repeats, null_p, null_ci, ci) -> dict:
    truth = 1 + TRUE_OVERHEAD
    return {
        "method": method,
        "trials": str(repeats),
        "coverage_null_pct": 100 * np.mean((null_ci[0] <= 1) & (null_ci[1] >= 1)),
        "coverage_20pct": 100 * np.mean((ci[0] <= truth) & (truth <= ci[1])),
        "false_positive_pct": np.nan if null_p is None else 100 * np.mean(null_p < ALPHA),
        "ci_width_pp": 100 * np.mean(ci[1] - ci[0]),
    }


def main() -> None:
    """Print the calibration tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000, help="simulated sweeps per row")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="the test's setting: the sequential table only"
    )
    parser.add_argument(
        "--alternatives",
        type=int,
        default=0,
        help="also run the methods not chosen on this many sweeps (slow: try 200)",
    )
    parser.add_argument(
        "--derive", action="store_true", help="recompute SEQUENTIAL_DF_DIVISOR (about 3 min)"
    )
    args = parser.parse_args()
    noise = Noise()
    start = time.perf_counter()
    if args.derive:
        for confidence in SEQUENTIAL_DF_DIVISOR:
            divisor, worst = derive_divisor(confidence)
            print(f"confidence {confidence}: k = {divisor:g}, worst coverage {100 * worst:.2f} %")
    if not args.quick and not args.derive:
        table = calibrate(TRIAL_COUNTS, args.sims, args.iterations, noise, args.seed)
        print(
            f"report statistics (paired t on log ratios of trial medians), {args.sims} sweeps "
            f"per row, {args.iterations} iterations per trial, true overhead 0 % and "
            f"{TRUE_OVERHEAD:.0%}, nominal 95 % CI, alpha {ALPHA}; {noise}"
        )
        print(table.to_markdown(index=False, floatfmt=".1f"))
    if not args.derive:
        sims, store_sims, iterations = QUICK if args.quick else (args.sims * 2, args.sims, 30)
        stopping = sequential_stopping(sims, store_sims, iterations, args.seed)
        print(
            f"\nprecision on demand (--target-ci): {FIRST_REPEATS} repeats, then one more until "
            f"the half-width is <= target or {DEFAULT_MAX_REPEATS} repeats; {sims} sweeps per "
            f"row ({store_sims} for the store model, {iterations} iterations per trial), nominal "
            "95 %; the sequential interval, the old rule (t after every look) and Lai's t "
            "confidence sequence on the same draws"
        )
        print(stopping.to_markdown(index=False, floatfmt=".1f"))
    if args.alternatives:
        other = alternatives(TRIAL_COUNTS, args.alternatives, args.iterations, noise, args.seed)
        print(f"\nmethods not chosen, {args.alternatives} sweeps per row")
        print(other.to_markdown(index=False, floatfmt=".1f"))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
