import numpy as np
import pandas as pd
import pytest

from nnr_profile.reports.overhead import OVERHEAD_COLUMNS, comparisons, overhead_table
from nnr_profile.reports.stats import compare, holm, iqr_ratio, is_noisy, trial_summary


def _trials(rng, median, count=3, n=100, spread=0.01, trial_spread=0.0):
    return [
        median * np.exp(rng.normal(0, trial_spread)) * (1 + rng.normal(0, spread, n))
        for _ in range(count)
    ]


def test_a_known_overhead_is_recovered_inside_its_interval():
    rng = np.random.default_rng(3)
    result = compare(_trials(rng, 10.0, trial_spread=0.01), _trials(rng, 12.0, trial_spread=0.01))
    assert result.ci_low_pct < 20.0 < result.ci_high_pct
    assert abs(result.overhead_pct - 20.0) < 3.0
    assert result.ratio == pytest.approx(1 + result.overhead_pct / 100)
    assert result.p_value < 0.01
    assert result.n_pairs == 3 and not result.noisy


def test_the_p_value_counts_trials_not_iterations():
    """Three trials a side with 3 % trial-to-trial drift and no true difference: the pooled
    test said p < 1e-6 here; a trial-level test must not."""
    rng = np.random.default_rng(11)
    base = _trials(rng, 10.0, n=1000, trial_spread=0.03)
    same = _trials(rng, 10.0, n=1000, trial_spread=0.03)
    result = compare(base, same)
    assert result.p_value > 0.01
    assert result.ci_low_pct < 0 < result.ci_high_pct


def test_one_pair_gives_no_interval_and_no_p_value():
    rng = np.random.default_rng(4)
    result = compare(_trials(rng, 10.0, count=1), _trials(rng, 11.0, count=1))
    assert result.n_pairs == 1
    assert np.isnan(result.ci_low_pct) and np.isnan(result.ci_high_pct)
    assert np.isnan(result.p_value)
    assert abs(result.overhead_pct - 10) < 1


def test_two_pairs_give_a_wide_but_real_interval():
    rng = np.random.default_rng(5)
    result = compare(
        _trials(rng, 10.0, count=2, trial_spread=0.02),
        _trials(rng, 11.0, count=2, trial_spread=0.02),
    )
    assert np.isfinite(result.ci_low_pct) and np.isfinite(result.p_value)
    assert result.ci_high_pct - result.ci_low_pct > 5


def test_holm_adjusts_step_down_and_keeps_nan():
    adjusted = holm(np.array([0.01, 0.04, np.nan, 0.03]))
    assert adjusted[0] == pytest.approx(0.03)
    assert adjusted[3] == pytest.approx(0.06)
    assert adjusted[1] == pytest.approx(0.06)
    assert np.isnan(adjusted[2])
    assert list(holm(np.array([0.5, 0.9]))) == [1.0, 1.0]


def test_trial_summary_gives_median_iqr_and_count_per_trial():
    frame = pd.DataFrame({"trial_id": [1, 1, 1, 1, 2, 2], "time_ms": [1.0, 2, 3, 4, 10, 30]})
    summary = trial_summary(frame).set_index("trial_id")
    assert summary.loc[1, "median_ms"] == 2.5 and summary.loc[2, "median_ms"] == 20
    assert summary.loc[1, "n_iterations"] == 4
    assert summary.loc[1, "iqr_ratio"] == pytest.approx((3.25 - 1.75) / 2.5)


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


def _rows(rng, cells, repeats=3, n=30):
    """Store-shaped iteration rows: cells maps (workload_args, mode) -> median ms."""
    rows, trial_id = [], 0
    for repeat in range(repeats):
        for (args, mode), median in cells.items():
            trial_id += 1
            factor = np.exp(rng.normal(0, 0.01))
            for i, t in enumerate(median * factor * (1 + rng.normal(0, 0.01, n))):
                rows.append(
                    {
                        "trial_id": trial_id,
                        "framework": "torch",
                        "workload": "m",
                        "workload_args": args,
                        "batch_size": 4,
                        "image_size": None,
                        "device": "gpu0",
                        "host": "h",
                        "gpu_arch": "Hopper",
                        "gpu_name": "H100",
                        "mode": mode,
                        "repeat": repeat,
                        "iteration": i,
                        "time_ms": t,
                    }
                )
    return pd.DataFrame(rows)


def test_overhead_table_pairs_repeats_and_adds_ratio_and_holm():
    rng = np.random.default_rng(6)
    frame = _rows(rng, {("{}", "default"): 10.0, ("{}", "deterministic"): 15.0})
    table = overhead_table(frame)
    assert list(table.columns) == OVERHEAD_COLUMNS
    row = table.iloc[0]
    assert row["device"] == "cuda" and row["n_trials"] == 3 and row["n_iterations"] == 90
    assert row["n_pairs"] == 3 and row["note"] == ""
    assert abs(row["overhead_pct"] - 50) < 3
    assert row["ratio"] == pytest.approx(1 + row["overhead_pct"] / 100)
    assert row["p_holm"] >= row["p_value"]


def test_failures_count_only_on_their_own_cell():
    rng = np.random.default_rng(7)
    cells = {
        ('{"kernel": 3}', "default"): 10.0,
        ('{"kernel": 3}', "deterministic"): 12.0,
        ('{"kernel": 5}', "default"): 20.0,
        ('{"kernel": 5}', "deterministic"): 30.0,
    }
    frame = _rows(rng, cells)
    columns = ["framework", "workload", "workload_args", "batch_size", "image_size", "device"]
    failed = frame.drop_duplicates("trial_id")[[*columns, "gpu_arch", "gpu_name", "mode"]]
    failed = failed[
        (failed["workload_args"] == '{"kernel": 5}') & (failed["mode"] == "deterministic")
    ]
    failed = failed.head(1).assign(status="failed", device="gpu1")
    table = overhead_table(frame, failed).set_index("workload_args")
    assert table.loc['{"kernel": 5}', "n_failed"] == 1
    assert table.loc['{"kernel": 3}', "n_failed"] == 0


def test_a_mode_whose_trials_all_failed_still_gets_a_row_that_says_so():
    rng = np.random.default_rng(8)
    frame = _rows(rng, {("{}", "default"): 10.0})
    failed = frame.drop_duplicates("trial_id").assign(mode="deterministic", status="failed")
    table = overhead_table(frame, failed)
    row = table.iloc[0]
    assert row["mode"] == "deterministic" and row["n_failed"] == 3 and row["n_trials"] == 0
    assert np.isnan(row["ratio"]) and "no successful mode trial" in row["note"]


def test_unpaired_trials_are_left_out_and_named():
    rng = np.random.default_rng(9)
    frame = _rows(rng, {("{}", "default"): 10.0, ("{}", "deterministic"): 11.0}, repeats=4)
    lost = frame[(frame["mode"] == "deterministic") & (frame["repeat"] == 3)]["trial_id"].iloc[0]
    row = overhead_table(frame[frame["trial_id"] != lost]).iloc[0]
    assert row["n_pairs"] == 3 and "1 trial(s) without a partner left out" in row["note"]


def test_without_a_repeat_column_trials_pair_in_run_order():
    rng = np.random.default_rng(10)
    frame = _rows(rng, {("{}", "default"): 10.0, ("{}", "deterministic"): 12.0})
    row = overhead_table(frame.drop(columns=["repeat", "host"])).iloc[0]
    assert row["n_pairs"] == 3 and abs(row["overhead_pct"] - 20) < 3
