"""`run --target-ci`: the stopping rule, and real sweeps that add repeats until precise enough."""

import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, run_cli

from nnr_profile.core.errors import UsageError
from nnr_profile.reports.overhead import SEQUENTIAL_COLUMNS
from nnr_profile.reports.stats import paired_estimate, sequential_interval
from nnr_profile.studies.precision import (
    PRECISION_COLUMNS,
    PrecisionTarget,
    half_widths,
    needs_more,
    precision_rows,
)

NAN = math.nan


def _table(rows, interval="sequential"):
    columns = ["overhead_pct", "ci_low_pct", "ci_high_pct", "baseline_median_ms", "median_ms"]
    return pd.DataFrame(rows, columns=columns).assign(n_pairs=5, interval=interval)


def test_the_wider_side_of_the_interval_decides():
    table = _table([(10.0, 8.0, 13.0, 1.0, 1.1), (10.0, 9.5, 10.4, 1.0, 1.1)])
    assert half_widths(table).tolist() == pytest.approx([3.0, 0.5])
    assert needs_more(table, 2.0).tolist() == [True, False]
    assert needs_more(table, 3.0).tolist() == [False, False]


def test_a_t_interval_is_judged_by_the_sequential_interval_it_implies():
    """The t interval of 10 pairs reaches 2 pp; the sequential interval of the same pairs
    (t with 9 / k degrees of freedom instead of 9) reaches further, so 2 pp is not enough."""
    d = np.log(1.1) + np.random.default_rng(1).normal(0, 0.03, 10)
    t = paired_estimate(np.array([10]), np.array([d.mean()]), np.array([d.std(ddof=1)]))
    row = (100 * (np.exp(d.mean()) - 1), 100 * (t.low[0] - 1), 100 * (t.high[0] - 1), 1.0, 1.1)
    table = _table([row], interval="t").assign(n_pairs=10)
    low, high = sequential_interval(d)
    ratio = np.exp(d.mean())
    assert half_widths(table).iloc[0] == pytest.approx(100 * max(high - ratio, ratio - low))
    assert half_widths(table).iloc[0] > row[2] - row[0]
    assert needs_more(table, row[2] - row[0] + 1e-9).tolist() == [True]
    assert needs_more(table.drop(columns="interval"), 100.0).tolist() == [False]


def test_a_missing_interval_needs_more_unless_a_mode_has_no_successful_trial():
    table = _table([(10.0, NAN, NAN, 1.0, 1.1), (NAN, NAN, NAN, NAN, 1.1)])
    assert needs_more(table, 5.0).tolist() == [True, False]
    assert needs_more(table.assign(interval="t"), 5.0).tolist() == [True, False]


def test_the_final_rows_carry_the_sequential_interval_and_say_so():
    d = np.log(1.1) + np.random.default_rng(2).normal(0, 0.03, 8)
    t = paired_estimate(np.array([8]), np.array([d.mean()]), np.array([d.std(ddof=1)]))
    cell = {c: "x" for c in ["framework", "workload", "gpu_arch", "gpu_name", "mode"]}
    table = pd.DataFrame(
        [
            {
                **cell,
                "baseline_mode": "default",
                "baseline_median_ms": 1.0,
                "median_ms": 1.1,
                "overhead_pct": 100 * (np.exp(d.mean()) - 1),
                "ci_low_pct": 100 * (t.low[0] - 1),
                "ci_high_pct": 100 * (t.high[0] - 1),
                "n_pairs": 8,
                "n_trials": 8,
            }
        ]
    )
    rows = precision_rows(table, 50.0)
    assert list(rows.columns) == [*PRECISION_COLUMNS, *SEQUENTIAL_COLUMNS]
    row = rows.iloc[0]
    low, high = sequential_interval(d)
    assert row["interval"] == "sequential" and bool(row["reached"]) and not row["hopeless"]
    assert row["ci_low_pct"] == pytest.approx(100 * (low - 1))
    assert row["ci_high_pct"] == pytest.approx(100 * (high - 1))
    assert row["t_ci_high_pct"] == pytest.approx(100 * (t.high[0] - 1))
    assert row["half_width_pp"] == pytest.approx(half_widths(table).iloc[0])


@pytest.mark.parametrize(
    ("half_width", "max_repeats"), [(0.0, 5), (NAN, 5), (math.inf, 5), (1.0, 1), (1.0, 2.5)]
)
def test_bad_targets_are_usage_errors(half_width, max_repeats):
    with pytest.raises(UsageError):
        PrecisionTarget(half_width, max_repeats)


def _trials(db):
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT * FROM trials", conn)


@pytest.mark.slow
def test_repeats_are_added_until_the_target_or_the_limit_and_a_rerun_adds_none(db):
    tiny = [*TINY[: TINY.index("--repeats")], "--repeats", "2"]
    proc = run_cli("run", "--model", "mlp", *tiny, "--target-ci", "1e300", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "every cell's 95 % CI is within +-1e+300 pp after at most 2 repeat(s)" in proc.stdout
    assert sorted(_trials(db)["repeat"]) == [0, 0, 1, 1]

    precise = [*tiny, "--target-ci", "1e-9", "--max-repeats", "3", "--db", str(db)]
    proc = run_cli("run", "--model", "mlp", *precise)
    assert proc.returncode == 0, proc.stderr
    assert "2 trial(s) run, 4 already in the store, 0 failed" in proc.stdout
    assert "1 of 1 cell(s) did not reach +-1e-09 pp (--max-repeats 3)" in proc.stdout
    assert "torch/mlp" in proc.stdout and "deterministic vs default" in proc.stdout
    trials = _trials(db)
    assert sorted(trials["repeat"]) == [0, 0, 1, 1, 2, 2] and trials["cell_key"].is_unique

    proc = run_cli("run", "--model", "mlp", *precise)
    assert proc.returncode == 0, proc.stderr
    assert "0 trial(s) run, 6 already in the store" in proc.stdout
    assert len(_trials(db)) == 6


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-repeats", "4"], "--max-repeats only applies together with --target-ci"),
        (["--target-ci", "nan"], "--target-ci"),
        (["--target-ci", "1", "--max-repeats", "2"], "--max-repeats (2) is below --repeats (3)"),
    ],
)
def test_bad_precision_options_are_one_line_and_exit_2_before_any_trial(db, args, says):
    proc = run_cli("run", "--model", "mlp", "--gpu", "cpu", *args, "--db", str(db))
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not db.exists()
