"""Statistics of an overhead with the trial as the unit: paired log ratios, t-intervals, Holm.

Iterations within one trial share its state (clocks, caches, neighbours), so they are not
independent samples. Each trial is reduced to its median iteration time; the modes of a cell
are interleaved within each repeat, so a repeat pairs one trial of the mode with one of the
baseline. Per pair r, ``d_r = log(median_mode_r) - log(median_baseline_r)``. Over the n pairs:

- ratio = exp(mean d) (the geometric mean of the paired ratios), overhead = ratio - 1;
- 95 % CI: the Student t interval on the mean of d, mapped through exp (needs n >= 2);
- p-value: the paired t-test of mean d = 0 (two-sided, n - 1 degrees of freedom);
- `holm`: Holm's step-down correction across the rows of one report.

`benchmarks/stats_calibration.py` checks coverage and false-positive rate of exactly these
functions by simulation. Raw samples stay in the store; everything here is derived from them.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def is_noisy(samples: np.ndarray, threshold: float = NOISY_IQR_RATIO) -> bool:
    """Whether IQR / median exceeds `threshold` (10 % by default)."""
    return iqr_ratio(samples) > threshold


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


@dataclass(frozen=True)
class Comparison:
    """`mode` against `baseline`: medians (ms), ratio, overhead % with its CI, p-value, noise."""

    baseline_median_ms: float
    median_ms: float
    ratio: float
    overhead_pct: float
    ci_low_pct: float
    ci_high_pct: float
    p_value: float
    n_pairs: int
    noisy: bool


def compare(
    baseline_trials: Sequence[np.ndarray],
    mode_trials: Sequence[np.ndarray],
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Overhead of `mode_trials` over `baseline_trials`, paired by position (repeat r with r).

    Each argument lists per-trial arrays of iteration times (ms). Medians are the medians of
    the per-trial medians; ratio, CI and p-value as in the module docstring; `noisy` when the
    median IQR / median of either side's trials exceeds NOISY_IQR_RATIO.
    """
    base = np.array([np.median(t) for t in baseline_trials], dtype=float)
    mode = np.array([np.median(t) for t in mode_trials], dtype=float)
    pairs = min(len(base), len(mode))
    d = np.log(mode[:pairs]) - np.log(base[:pairs])
    sd = float(np.std(d, ddof=1)) if pairs >= 2 else float("nan")
    mean = float(np.mean(d)) if pairs else float("nan")
    est = paired_estimate(np.array([pairs]), np.array([mean]), np.array([sd]), confidence)
    noisy = any(
        np.median([iqr_ratio(t) for t in side]) > NOISY_IQR_RATIO
        for side in (baseline_trials, mode_trials)
        if len(side)
    )
    return Comparison(
        baseline_median_ms=float(np.median(base)),
        median_ms=float(np.median(mode)),
        ratio=float(est.ratio[0]),
        overhead_pct=float((est.ratio[0] - 1) * 100),
        ci_low_pct=float((est.low[0] - 1) * 100),
        ci_high_pct=float((est.high[0] - 1) * 100),
        p_value=float(est.p_value[0]),
        n_pairs=pairs,
        noisy=bool(noisy),
    )
