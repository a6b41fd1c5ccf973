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

A second table checks precision on demand (`run --target-ci PP`): each simulated sweep starts
with 3 repeats and gets one more until the report's interval reaches +-PP points or 10 repeats
(the rule `nnr_profile.studies.precision.needs_more`); the stopped estimate's bias and its
interval's coverage must match the fixed-size sweeps'.

    python benchmarks/stats_calibration.py                 # 2000 sweeps per row (~2 min, 2 cores)
    python benchmarks/stats_calibration.py --sims 300      # quick look
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
from nnr_profile.studies.precision import needs_more

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


def adaptive_stopping(
    sims: int,
    target_pp: float,
    iterations: int,
    noise: Noise,
    seed: int,
    first: int = 3,
    most: int = 10,
) -> pd.DataFrame:
    """Bias, coverage and repeats used when sweeps stop at a target CI half-width."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for overhead in (0.0, TRUE_OVERHEAD):
        times = simulate_times(sims, most, overhead, iterations, noise, rng)
        stopped = np.full(sims, most)
        estimate = np.full(sims, np.nan)
        low = np.full(sims, np.nan)
        high = np.full(sims, np.nan)
        open_ = np.ones(sims, dtype=bool)
        for repeats in range(first, most + 1):
            table = overhead_table(store_frame(times[:, :repeats]))
            table = table.sort_values("workload").reset_index(drop=True)
            done = open_ & (~needs_more(table, target_pp).to_numpy() | (repeats == most))
            stopped[done] = repeats
            estimate[done] = table["overhead_pct"].to_numpy()[done]
            low[done] = table["ci_low_pct"].to_numpy()[done]
            high[done] = table["ci_high_pct"].to_numpy()[done]
            open_ &= ~done
        truth = overhead * 100
        rows.append(
            {
                "true_overhead_pct": truth,
                "target_half_width_pp": target_pp,
                "bias_pp": float(np.mean(estimate - truth)),
                "coverage_pct": float(100 * np.mean((low <= truth) & (truth <= high))),
                "mean_repeats": float(stopped.mean()),
                "reached_target_pct": float(
                    100 * np.mean(np.maximum(high - estimate, estimate - low) <= target_pp)
                ),
            }
        )
    return pd.DataFrame(rows)


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
    """Print the calibration table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000, help="simulated sweeps per row")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--target-ci", type=float, default=5.0, help="half-width target (pp) of the stopping check"
    )
    parser.add_argument(
        "--alternatives",
        type=int,
        default=0,
        help="also run the methods not chosen on this many sweeps (slow: try 200)",
    )
    args = parser.parse_args()
    noise = Noise()
    start = time.perf_counter()
    table = calibrate(TRIAL_COUNTS, args.sims, args.iterations, noise, args.seed)
    print(
        f"report statistics (paired t on log ratios of trial medians), {args.sims} sweeps per "
        f"row, {args.iterations} iterations per trial, true overhead 0 % and "
        f"{TRUE_OVERHEAD:.0%}, nominal 95 % CI, alpha {ALPHA}; {noise}"
    )
    print(table.to_markdown(index=False, floatfmt=".1f"))
    stopping = adaptive_stopping(
        min(args.sims, 1000), args.target_ci, args.iterations, noise, args.seed
    )
    print(f"\nprecision on demand: 3 repeats, then one more until +-{args.target_ci} pp or 10")
    print(stopping.to_markdown(index=False, floatfmt=".1f"))
    if args.alternatives:
        other = alternatives(TRIAL_COUNTS, args.alternatives, args.iterations, noise, args.seed)
        print(f"\nmethods not chosen, {args.alternatives} sweeps per row")
        print(other.to_markdown(index=False, floatfmt=".1f"))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
