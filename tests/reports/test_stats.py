import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nnr_profile.reports.overhead import (
    OVERHEAD_COLUMNS,
    SEQUENTIAL_COLUMNS,
    comparisons,
    overhead_table,
    with_sequential_interval,
)
from nnr_profile.reports.stats import (
    SEQUENTIAL_DF_DIVISOR,
    holm,
    iqr_ratio,
    paired_estimate,
    sequential_from_t,
    sequential_interval,
    trial_summary,
)


def _paired(rng, base, mode, repeats=3, n=100, spread=0.01, trial_spread=0.0):
    """Store-shaped iterations: `repeats` paired trials of default (median `base` ms) and
    deterministic (median `mode` ms), each with its own trial-level factor."""
    cells = {("{}", "default"): base, ("{}", "deterministic"): mode}
    return _rows(rng, cells, repeats, n, spread, trial_spread)


def test_a_known_overhead_is_recovered_inside_its_interval():
    rng = np.random.default_rng(3)
    row = overhead_table(_paired(rng, 10.0, 12.0, trial_spread=0.01)).iloc[0]
    assert row["ci_low_pct"] < 20.0 < row["ci_high_pct"]
    assert abs(row["overhead_pct"] - 20.0) < 3.0
    assert row["p_value"] < 0.01 and row["n_pairs"] == 3 and not row["noisy"]


def test_the_p_value_counts_trials_not_iterations():
    """Three trials a side with 3 % trial-to-trial drift and no true difference: the pooled
    test said p < 1e-6 here; a trial-level test must not."""
    rng = np.random.default_rng(11)
    row = overhead_table(_paired(rng, 10.0, 10.0, n=1000, trial_spread=0.03)).iloc[0]
    assert row["p_value"] > 0.01
    assert row["ci_low_pct"] < 0 < row["ci_high_pct"]


def test_one_pair_gives_no_interval_and_no_p_value():
    rng = np.random.default_rng(4)
    row = overhead_table(_paired(rng, 10.0, 11.0, repeats=1)).iloc[0]
    assert row["n_pairs"] == 1
    assert np.isnan(row["ci_low_pct"]) and np.isnan(row["ci_high_pct"])
    assert np.isnan(row["p_value"])
    assert abs(row["overhead_pct"] - 10) < 1


def test_two_pairs_give_a_wide_but_real_interval():
    rng = np.random.default_rng(5)
    row = overhead_table(_paired(rng, 10.0, 11.0, repeats=2, trial_spread=0.02)).iloc[0]
    assert np.isfinite(row["ci_low_pct"]) and np.isfinite(row["p_value"])
    assert row["ci_high_pct"] - row["ci_low_pct"] > 5


def test_the_sequential_interval_is_the_t_interval_with_deflated_degrees_of_freedom():
    d = np.log([1.21, 1.18, 1.22, 1.19, 1.20, 1.25, 1.17])
    low, high = sequential_interval(d)
    k = SEQUENTIAL_DF_DIVISOR[0.95]
    half = stats.t.ppf(0.975, (len(d) - 1) / k) * d.std(ddof=1) / np.sqrt(len(d))
    assert (low, high) == pytest.approx((np.exp(d.mean() - half), np.exp(d.mean() + half)))
    t = paired_estimate(np.array([7]), np.array([d.mean()]), np.array([d.std(ddof=1)]))
    assert low < t.low[0] < t.high[0] < high
    assert sequential_from_t(np.array([7]), t.low, t.high) == pytest.approx((low, high))


def test_the_sequential_interval_needs_two_pairs_with_spread_and_a_calibrated_level():
    assert np.isnan(sequential_interval(np.array([0.1]))).all()
    assert np.isnan(sequential_interval(np.array([0.1, 0.1]))).all()
    assert np.isfinite(sequential_interval(np.array([0.1, 0.12]))).all()
    with pytest.raises(ValueError, match="calibrated"):
        sequential_interval(np.array([0.1, 0.12, 0.11]), confidence=0.8)


def test_the_overhead_table_can_carry_the_sequential_interval_and_says_so():
    rng = np.random.default_rng(12)
    frame = _paired(rng, 10.0, 12.0, repeats=6, trial_spread=0.02)
    plain = overhead_table(frame)
    table = overhead_table(frame, interval="sequential")
    assert list(table.columns) == [*OVERHEAD_COLUMNS, *SEQUENTIAL_COLUMNS]
    row = table.iloc[0]
    assert row["interval"] == "sequential"
    assert row["t_ci_low_pct"] == plain.iloc[0]["ci_low_pct"]
    medians = frame.groupby(["repeat", "mode"])["time_ms"].median().unstack()
    d = np.log(medians["deterministic"] / medians["default"]).to_numpy()
    low, high = sequential_interval(d)
    assert row["ci_low_pct"] == pytest.approx(100 * (low - 1))
    assert row["ci_high_pct"] == pytest.approx(100 * (high - 1))
    converted = with_sequential_interval(plain)
    for column in ("ci_low_pct", "ci_high_pct", "t_ci_low_pct", "t_ci_high_pct"):
        assert converted[column].to_numpy() == pytest.approx(table[column].to_numpy())
    assert with_sequential_interval(table) is table
    with pytest.raises(ValueError, match="interval"):
        overhead_table(frame, interval="bootstrap")


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


def test_iqr_ratio_is_iqr_over_median():
    quiet = np.array([10.0, 10.1, 9.9, 10.05, 9.95])
    loud = np.array([5.0, 10.0, 15.0, 8.0, 12.0])
    assert iqr_ratio(quiet) < 0.1 < iqr_ratio(loud)


def test_comparisons_against_default_and_fast():
    assert comparisons(["default", "deterministic"]) == [("default", "deterministic")]
    assert comparisons(["default", "fast", "deterministic"]) == [
        ("default", "fast"),
        ("default", "deterministic"),
        ("fast", "deterministic"),
    ]
    assert comparisons(["deterministic"]) == []


def _rows(rng, cells, repeats=3, n=30, spread=0.01, trial_spread=0.01):
    """Store-shaped iteration rows: cells maps (workload_args, mode) -> median ms."""
    rows, trial_id = [], 0
    for repeat in range(repeats):
        for (args, mode), median in cells.items():
            trial_id += 1
            factor = np.exp(rng.normal(0, trial_spread))
            for i, t in enumerate(median * factor * (1 + rng.normal(0, spread, n))):
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
