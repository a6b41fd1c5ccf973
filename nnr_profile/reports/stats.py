"""Statistics of an overhead with the trial as the unit: paired log ratios, t-intervals, Holm.

Iterations within one trial share its state (clocks, caches, neighbours), so they are not
independent samples. Each trial is reduced to its median iteration time; the modes of a cell
are interleaved within each repeat, so a repeat pairs one trial of the mode with one of the
baseline. Per pair r, ``d_r = log(median_mode_r) - log(median_baseline_r)``. Over the n pairs:

- ratio = exp(mean d) (the geometric mean of the paired ratios), overhead = ratio - 1;
- 95 % CI: the Student t interval on the mean of d, mapped through exp (needs n >= 2);
- p-value: the paired t-test of mean d = 0 (two-sided, n - 1 degrees of freedom);
- `holm`: Holm's step-down correction across the rows of one report;
- `sequential_interval` / `sequential_bounds`: the interval that stays valid when the number of
  pairs was chosen by looking at the interval's width (`run --target-ci`), see there.

`benchmarks/stats_calibration.py` checks coverage and false-positive rate of exactly these
functions by simulation. Raw samples stay in the store; everything here is derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
MIN_PAIRS = 2
"""Fewer paired repeats than this give no interval and no p-value (NaN), never a made-up one."""
NOISY_IQR_RATIO = 0.10
"""A trial is noisy when its IQR / median exceeds this (torch.utils.benchmark's rule)."""


def iqr_ratio(samples: np.ndarray) -> float:
    """Interquartile range divided by the median."""
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return float((q3 - q1) / median) if median else float("inf")


def trial_summary(iterations: pd.DataFrame) -> pd.DataFrame:
    """One row per trial from raw iterations (columns trial_id, time_ms in ms).

    Result columns: trial_id, median_ms (median iteration time, ms), iqr_ratio (IQR / median,
    a fraction), n_iterations (count). Vectorised over all trials at once.
    """
    if iterations.empty:
        return pd.DataFrame(columns=["trial_id", "median_ms", "iqr_ratio", "n_iterations"])
    grouped = iterations.groupby("trial_id", sort=True)["time_ms"]
    quartiles = grouped.quantile([0.25, 0.5, 0.75]).unstack()
    summary = pd.DataFrame(
        {
            "median_ms": quartiles[0.5],
            "iqr_ratio": (quartiles[0.75] - quartiles[0.25]) / quartiles[0.5],
            "n_iterations": grouped.size(),
        }
    )
    return summary.rename_axis("trial_id").reset_index()


@dataclass(frozen=True)
class PairedEstimate:
    """Per cell (arrays): ratio, its CI bounds (ratios), paired t-test p-value, pairs used."""

    ratio: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray
    n_pairs: np.ndarray


def paired_estimate(
    n_pairs: np.ndarray,
    mean_log_ratio: np.ndarray,
    sd_log_ratio: np.ndarray,
    confidence: float = CONFIDENCE,
) -> PairedEstimate:
    """Ratio exp(mean d), t-interval and paired t-test p from per-cell summaries of d.

    Arguments are arrays over cells: the number of pairs n, the mean and the sample standard
    deviation (ddof 1) of the paired log ratios d. Cells with n < MIN_PAIRS or no spread get
    NaN bounds and p-value; the ratio is exp(mean d) whenever n >= 1.
    """
    n = np.asarray(n_pairs, dtype=float)
    mean = np.asarray(mean_log_ratio, dtype=float)
    sd = np.asarray(sd_log_ratio, dtype=float)
    usable = (n >= MIN_PAIRS) & np.isfinite(sd) & (sd > 0) & np.isfinite(mean)
    df = np.where(usable, n - 1, 1.0)
    se = np.where(usable, sd, 1.0) / np.sqrt(np.where(usable, n, 1.0))
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    t_stat = np.where(usable, mean, 0.0) / se
    p_value = 2 * stats.t.sf(np.abs(t_stat), df)
    nan = np.full(n.shape, np.nan)
    return PairedEstimate(
        ratio=np.where(n >= 1, np.exp(mean), np.nan),
        low=np.where(usable, np.exp(mean - critical * se), nan),
        high=np.where(usable, np.exp(mean + critical * se), nan),
        p_value=np.where(usable, p_value, nan),
        n_pairs=n.astype(int),
    )


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family = the finite entries; NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


SEQUENTIAL_DF_DIVISOR = {0.90: 2.8, 0.95: 2.4, 0.99: 1.95}
"""k of `sequential_bounds` per confidence level: the smallest multiple of 0.05 whose coverage
at the stopping repeat is >= the level + 0.05 pp for Gaussian pairs, every first repeat 2..15,
last 10..50 and target / sd ratio (`benchmarks/stats_calibration.py --derive` recomputes)."""


def sequential_bounds(
    n_pairs: np.ndarray,
    mean_log_ratio: np.ndarray,
    sd_log_ratio: np.ndarray,
    confidence: float = CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) ratio bounds of `sequential_interval`, vectorised over cells.

    Arguments as `paired_estimate`'s (arrays over cells: n, mean and sd (ddof 1) of the paired
    log ratios d). Cells with n < MIN_PAIRS or no spread get NaN bounds. Raises ValueError for
    a confidence level without a calibrated k (SEQUENTIAL_DF_DIVISOR).
    """
    if confidence not in SEQUENTIAL_DF_DIVISOR:
        raise ValueError(
            f"the sequential interval is calibrated at confidence {sorted(SEQUENTIAL_DF_DIVISOR)}"
            f" only, not {confidence}"
        )
    n = np.asarray(n_pairs, dtype=float)
    mean = np.asarray(mean_log_ratio, dtype=float)
    sd = np.asarray(sd_log_ratio, dtype=float)
    usable = (n >= MIN_PAIRS) & np.isfinite(sd) & (sd > 0) & np.isfinite(mean)
    df = np.where(usable, n - 1, 1.0) / SEQUENTIAL_DF_DIVISOR[confidence]
    half = stats.t.ppf(0.5 + confidence / 2, df) * np.where(usable, sd, 1.0)
    half = half / np.sqrt(np.where(usable, n, 1.0))
    with np.errstate(over="ignore"):
        low = np.where(usable, np.exp(mean - half), np.nan)
        high = np.where(usable, np.exp(mean + half), np.nan)
    return low, high


def sequential_from_t(
    n_pairs: np.ndarray,
    t_low_ratio: np.ndarray,
    t_high_ratio: np.ndarray,
    confidence: float = CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """`sequential_bounds` from the t interval's ratio bounds (as `paired_estimate` gives them).

    The t interval exp(m -+ t_{n-1} s / sqrt(n)) gives back m (the middle of its log bounds) and
    s / sqrt(n) (its log width over 2 t_{n-1}); NaN bounds stay NaN.
    """
    n = np.asarray(n_pairs, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_low = np.log(np.asarray(t_low_ratio, dtype=float))
        log_high = np.log(np.asarray(t_high_ratio, dtype=float))
    usable = (n >= MIN_PAIRS) & np.isfinite(log_low) & np.isfinite(log_high)
    safe_n = np.where(usable, n, 2.0)
    critical = stats.t.ppf(0.5 + confidence / 2, safe_n - 1)
    se = np.where(usable, (log_high - log_low) / (2 * critical), np.nan)
    mean = np.where(usable, (log_high + log_low) / 2, np.nan)
    return sequential_bounds(safe_n, mean, se * np.sqrt(safe_n), confidence)


def sequential_interval(d: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(low_ratio, high_ratio): the interval on exp(mean d) that `--target-ci` stops on.

    `d` is the 1-D array of paired log ratios log(mode / baseline), one per paired repeat, in
    the order observed (unitless; the bounds are ratios mode / baseline, 1.25 = 25 % slower).

    Method: the Student t interval with deflated degrees of freedom, a sequential fixed-width
    interval in the sense of Chow and Robbins ("On the asymptotic theory of fixed-width
    sequential confidence intervals for the mean", Ann. Math. Statist. 36, 457-462, 1965) whose
    critical value is calibrated for stopping on the interval's own width. With n pairs, mean
    m and sample standard deviation s (ddof 1) of d:

        exp(m -+ t_{(1 + confidence) / 2, (n - 1) / k} * s / sqrt(n)),   k = SEQUENTIAL_DF_DIVISOR

    (k = 2.4 at 95 %: t = 20.6 at n = 3, 2.85 at 10, 2.31 at 20, 2.08 at 50, against the fixed
    t's 4.30, 2.26, 2.09, 2.01). Why it holds: for Gaussian d the mean of the first n pairs is
    independent of their Helmert contrasts, hence of every width so far (the argument of Stein,
    Ann. Math. Statist. 16, 243-258, 1945, for his two-stage interval), so the rule "stop at the
    first n >= n0 whose half-width is <= target, or at n_max" chooses n without looking at the
    mean (up to the percent scale: the upper side in pp is exp(m) (exp(h) - 1)). Its only harm
    is stopping when s happens to be small, where the plain t interval covers 88-92 %. The
    coverage at the stopping repeat tau is then exactly E[2 Phi(t_tau s_tau / sigma) - 1],
    which `benchmarks/stats_calibration.py --derive` computes for every n0 in 2..15, n_max in
    10..50 and target / sigma; k is the smallest keeping its worst case >= confidence (+0.05
    pp); heavy tails and outlier pairs are checked there by simulation. It is not an
    anytime-valid confidence sequence: a rule that stops on the estimate itself (say, once the
    interval excludes 1) needs one, e.g. Lai's t confidence sequence (Ann. Statist. 4, 265-280,
    1976), twice as wide in variance at n = 10 (about twice the repeats) for this rule.
    Fewer than MIN_PAIRS pairs or no spread give (NaN, NaN).
    """
    values = np.asarray(d, dtype=float).ravel()
    n = values.size
    mean = float(values.mean()) if n else float("nan")
    sd = float(values.std(ddof=1)) if n >= MIN_PAIRS else float("nan")
    low, high = sequential_bounds(np.array([n]), np.array([mean]), np.array([sd]), confidence)
    return float(low[0]), float(high[0])
