"""Bootstrap confidence intervals over replicas, the unit of a variability study.

Replicas are resampled with replacement (percentile bootstrap, seeded so that a report is
reproducible). A per-replica statistic (test accuracy) is averaged over the resampled
replicas; a pairwise one (churn, weight distance) over the pairs of *distinct* resampled
replicas (a replica drawn twice is not compared with itself: that pair would add a false
zero). Too few replicas give NaN bounds, never a made-up interval.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
MIN_REPLICAS_MEAN = 2
MIN_REPLICAS_PAIRWISE = 3
"""With two replicas there is one pair: every resample holds it or nothing, so no interval."""
_CELLS_PER_CHUNK = 2_000_000


def _bounds(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean_ci(
    values: np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-replica `values` (NaN for < 2)."""
    values = np.asarray(values, dtype=float)
    if values.size < MIN_REPLICAS_MEAN:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.size, size=(resamples, values.size))
    return _bounds(values[index].mean(axis=1), confidence)


def bootstrap_pairwise_ci(
    matrix: np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean pairwise value, resampling replicas.

    `matrix` is the symmetric R x R matrix of a pairwise measure (e.g. disagreement); each
    resample draws R replicas and averages the measure over its pairs of distinct replicas.
    NaN bounds for fewer than MIN_REPLICAS_PAIRWISE replicas.
    """
    matrix = np.asarray(matrix, dtype=float)
    count = matrix.shape[0]
    if count < MIN_REPLICAS_PAIRWISE:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, count, size=(resamples, count))
    upper = np.triu(np.ones((count, count), dtype=bool), k=1)
    chunk = max(1, _CELLS_PER_CHUNK // (count * count))
    means = np.empty(resamples)
    for start in range(0, resamples, chunk):
        rows = index[start : start + chunk]
        left, right = rows[:, :, None], rows[:, None, :]
        pairs = (left != right) & upper
        values = np.where(pairs, matrix[left, right], 0.0)
        counted = pairs.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            means[start : start + chunk] = values.sum(axis=(1, 2)) / counted
    return _bounds(means, confidence)
