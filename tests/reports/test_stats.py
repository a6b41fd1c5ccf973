import numpy as np
import pandas as pd

from nnr_profile.reports.overhead import OVERHEAD_COLUMNS, comparisons, overhead_table
from nnr_profile.reports.stats import compare, iqr_ratio, is_noisy


def _trials(rng, median, count=3, n=100, spread=0.01):
    return [median * (1 + rng.normal(0, spread, n)) for _ in range(count)]


def test_ci_covers_a_known_overhead_and_is_tight_on_quiet_data():
    rng = np.random.default_rng(3)
    result = compare(_trials(rng, 10.0), _trials(rng, 12.0))
    assert result.ci_low_pct < 20.0 < result.ci_high_pct
    assert result.ci_high_pct - result.ci_low_pct < 2.0
    assert abs(result.overhead_pct - 20.0) < 1.0
    assert result.p_value < 1e-10
    assert not result.noisy


def test_no_difference_gives_a_ci_around_zero_and_a_large_p_value():
    rng = np.random.default_rng(4)
    result = compare(_trials(rng, 10.0), _trials(rng, 10.0))
    assert result.ci_low_pct < 0 < result.ci_high_pct
    assert result.p_value > 0.01


def test_trial_to_trial_drift_widens_the_ci():
    rng = np.random.default_rng(5)
    steady = compare(_trials(rng, 10.0), _trials(rng, 10.0))
    drifting = [10.0 * f * (1 + rng.normal(0, 0.01, 100)) for f in (0.9, 1.0, 1.1)]
    shifted = compare(drifting, _trials(rng, 10.0))
    assert (shifted.ci_high_pct - shifted.ci_low_pct) > 3 * (steady.ci_high_pct - steady.ci_low_pct)


def test_noisy_flag_uses_iqr_over_median():
    quiet = np.array([10.0, 10.1, 9.9, 10.05, 9.95])
    loud = np.array([5.0, 10.0, 15.0, 8.0, 12.0])
    assert iqr_ratio(quiet) < 0.1 and not is_noisy(quiet)
    assert is_noisy(loud)


def test_comparisons_against_default_and_fast():
    assert comparisons(["default", "deterministic"]) == [("default", "deterministic")]
    assert comparisons(["default", "fast", "deterministic"]) == [
        ("default", "fast"),
        ("default", "deterministic"),
        ("fast", "deterministic"),
    ]
    assert comparisons(["deterministic"]) == []


def test_overhead_table_from_raw_iterations():
    rng = np.random.default_rng(6)
    rows = []
    trial_id = 0
    for mode, median in (("default", 10.0), ("deterministic", 15.0)):
        for _ in range(3):
            trial_id += 1
            for i, t in enumerate(median * (1 + rng.normal(0, 0.01, 50))):
                rows.append(
                    {
                        "trial_id": trial_id,
                        "framework": "torch",
                        "workload": "m",
                        "workload_args": "{}",
                        "batch_size": 4,
                        "image_size": None,
                        "device": "gpu0",
                        "gpu_arch": "Hopper",
                        "gpu_name": "H100",
                        "mode": mode,
                        "iteration": i,
                        "time_ms": t,
                    }
                )
    table = overhead_table(pd.DataFrame(rows), resamples=500)
    assert list(table.columns) == OVERHEAD_COLUMNS
    row = table.iloc[0]
    assert row["device"] == "cuda" and row["n_trials"] == 3 and row["n_iterations"] == 150
    assert abs(row["overhead_pct"] - 50) < 2
