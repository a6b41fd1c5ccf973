"""Statistics on raw per-iteration times: medians, hierarchical bootstrap CIs, noise checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

NOISY_IQR_RATIO = 0.10
"""A sample is flagged noisy when its IQR / median exceeds this (torch.utils.benchmark's rule)."""


def iqr_ratio(samples: np.ndarray) -> float:
    """Interquartile range divided by the median."""
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return float((q3 - q1) / median) if median else float("inf")


def is_noisy(samples: np.ndarray, threshold: float = NOISY_IQR_RATIO) -> bool:
    """Whether IQR / median exceeds `threshold` (10 % by default)."""
    return iqr_ratio(samples) > threshold


def _bootstrap_medians(
    trials: Sequence[np.ndarray], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Median of each two-level resample: trials with replacement, then iterations within each."""
    count = len(trials)
    lengths = np.array([len(t) for t in trials])
    width = int(lengths.max())
    padded = np.full((count, width), np.nan)
    for i, t in enumerate(trials):
        padded[i, : len(t)] = t
    chunk = max(1, 2_000_000 // (count * width))
    medians = []
    for first in range(0, resamples, chunk):
        size = min(chunk, resamples - first)
        rows = rng.integers(0, count, size=(size, count))
        row_lengths = lengths[rows][..., None]
        cols = (rng.random((size, count, width)) * row_lengths).astype(np.int64)
        values = padded[rows[..., None], cols]
        values[np.arange(width) >= row_lengths] = np.nan
        medians.append(np.nanmedian(values.reshape(size, -1), axis=1))
    return np.concatenate(medians)


@dataclass(frozen=True)
class Comparison:
    """`mode` against `baseline`: medians (ms), overhead % with its 95 % CI, test, noise flags."""

    baseline_median_ms: float
    median_ms: float
    overhead_pct: float
    ci_low_pct: float
    ci_high_pct: float
    p_value: float
    noisy: bool


def compare(
    baseline_trials: Sequence[np.ndarray],
    mode_trials: Sequence[np.ndarray],
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Overhead of `mode_trials` over `baseline_trials` (each a list of per-trial time arrays).

    Overhead = median(mode) / median(baseline) - 1 over all iterations pooled. The CI is a
    percentile bootstrap that resamples trials, then iterations within each chosen trial, for
    each side independently. The p-value is a two-sided Mann-Whitney U test on the pooled
    iterations. `noisy` is set when either side's IQR / median exceeds 10 %.
    """
    rng = np.random.default_rng(seed)
    base_all = np.concatenate(baseline_trials)
    mode_all = np.concatenate(mode_trials)
    base_median = float(np.median(base_all))
    mode_median = float(np.median(mode_all))
    ratios = _bootstrap_medians(mode_trials, resamples, rng) / _bootstrap_medians(
        baseline_trials, resamples, rng
    )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    if len(base_all) > 1 and len(mode_all) > 1:
        p_value = float(stats.mannwhitneyu(mode_all, base_all, alternative="two-sided").pvalue)
    else:
        p_value = float("nan")
    return Comparison(
        baseline_median_ms=base_median,
        median_ms=mode_median,
        overhead_pct=(mode_median / base_median - 1) * 100,
        ci_low_pct=(low - 1) * 100,
        ci_high_pct=(high - 1) * 100,
        p_value=p_value,
        noisy=is_noisy(base_all) or is_noisy(mode_all),
    )
