"""The budget design: its maths against brute force, its estimates, a real run and its refusals."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_usage_error, run_cli

from nnr_profile.core.errors import ParameterError
from nnr_profile.studies.budget import (
    MIN_REPEATS,
    BudgetConfig,
    PilotEstimate,
    choose_design,
    estimate_pilot,
    half_widths_pp,
    kalibera_jones,
    mean_variance,
    optimal_iterations,
    repeat_cost_s,
)


def _estimate(o=5.0, t=0.02, s1=1e-4, s2=4e-2, modes=2, repeats=2, iterations=20):
    return PilotEstimate(o, t, s1, s2, 0.1, repeats, iterations, modes)


def _brute(left, e, objective):
    """The best (value, n, r) over every (n, r) that fits `left` seconds."""
    best = (math.inf, 0, 0)
    for n in range(1, 5001):
        r = int(left // repeat_cost_s(n, e.modes, e.overhead_s, e.iteration_s))
        if r < MIN_REPEATS:
            break
        for rr in range(MIN_REPEATS, r + 1):
            best = min(best, (objective(rr, n), n, rr))
    return best


@pytest.mark.parametrize(("s1", "s2"), [(1e-4, 4e-2), (1e-3, 1e-3), (4e-4, 1e-1), (1e-5, 1e-2)])
def test_kalibera_jones_reaches_the_brute_force_minimum_variance(s1, s2):
    e = _estimate(s1=s1, s2=s2)
    left = 600.0
    n, r = kalibera_jones(left, e)
    assert r * repeat_cost_s(n, 2, e.overhead_s, e.iteration_s) <= left + 1e-6
    best, _, _ = _brute(left, e, lambda rr, nn: mean_variance(rr, nn, s1, s2))
    assert mean_variance(r, n, s1, s2) <= best * 1.03
    star = optimal_iterations(e.overhead_s, e.iteration_s, s1, s2)
    assert star == pytest.approx(math.sqrt(5.0 * s2 / (0.02 * s1)))


def test_the_chosen_design_has_the_brute_force_narrowest_expected_interval():
    e = _estimate(s1=2e-4, s2=2e-2)
    budget = 600.0 + e.cost_s
    design = choose_design(e, budget)
    best, _, _ = _brute(
        600.0,
        e,
        lambda rr, nn: float(half_widths_pp(e, np.array([rr]), np.array([nn]))[0]),
    )
    assert design.expected_half_width_pp == pytest.approx(best, rel=1e-9)
    assert design.cost_s + design.pilot_cost_s <= budget + 1e-6
    assert design.total_repeats == design.repeats + 2


def test_no_between_trial_variance_spends_on_iterations_no_within_on_repeats():
    flat = _estimate(s1=0.0, s2=4e-2)
    assert optimal_iterations(5.0, 0.02, 0.0, 4e-2) == math.inf
    n, r = kalibera_jones(600.0, flat)
    assert r == MIN_REPEATS and n == int((600.0 / (r * 2) - 5.0) / 0.02)
    quiet = _estimate(s1=1e-3, s2=0.0)
    assert optimal_iterations(5.0, 0.02, 1e-3, 0.0) == 0.0
    n, r = kalibera_jones(600.0, quiet)
    assert r == int(600.0 // repeat_cost_s(1, 2, 5.0, 0.02))
    assert choose_design(quiet, 600.0 + quiet.cost_s).repeats == r


def test_a_budget_below_the_pilot_is_refused():
    e = _estimate()
    with pytest.raises(ParameterError, match="leaves no room for 2 repeats after the pilot"):
        choose_design(e, e.cost_s + 10.0)
    with pytest.raises(ParameterError, match="is below what the pilot"):
        BudgetConfig(0.01).check(modes=2)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ParameterError, match="budget"):
            BudgetConfig(bad)


def test_the_pilot_estimates_come_from_the_stored_trials():
    rng = np.random.default_rng(0)
    rows, times = [], []
    for trial_id, (mode, repeat) in enumerate(
        [("default", 0), ("deterministic", 0), ("deterministic", 1), ("default", 1)], start=1
    ):
        scale = 0.010 if mode == "default" else 0.012
        t = scale * np.exp(rng.normal(0, 0.05, 200))
        times += [{"trial_id": trial_id, "time_ms": 1000 * x} for x in t]
        finished = pd.Timestamp("2026-01-01T00:00:00Z") + pd.Timedelta(seconds=5 * trial_id)
        rows.append(
            {
                "id": trial_id,
                "mode": mode,
                "repeat": repeat,
                "device": "cpu",
                "wall_s": 4.0,
                "iterations": 200,
                "finished_at": finished.isoformat(),
            }
        )
    e = estimate_pilot(pd.DataFrame(rows), pd.DataFrame(times), "default", 2)
    assert e.overhead_s == pytest.approx(5.0 - 200 * 0.011, abs=0.4)  # the gaps, not wall_s
    assert e.iteration_s == pytest.approx(0.011, rel=0.1)
    assert e.within_var == pytest.approx(2 * 0.05**2 * math.pi / 2, rel=0.3)
    assert e.mean_log_ratio == pytest.approx(math.log(1.2), abs=0.03)


@pytest.mark.slow
def test_a_budget_run_designs_runs_and_resumes(db):
    args = ["run", "--model", "mlp", "--gpu", "cpu", "--batch-size", "4", "--budget", "0.2"]
    proc = run_cli(*args, "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "budget: torch/mlp: pilot o=" in proc.stderr and "expected 95 % CI +-" in proc.stderr
    assert "pp reached over" in proc.stdout and "deterministic vs default" in proc.stdout
    with sqlite3.connect(db) as conn:
        trials = pd.read_sql_query("SELECT repeat, iterations FROM trials", conn)
    pilot = trials[trials["repeat"] < 2]
    assert len(pilot) == 4 and set(pilot["iterations"]) == {20}
    assert (trials["repeat"] >= 2).sum() >= 2 * MIN_REPEATS
    again = run_cli(*args, "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert f"0 trial(s) run, {len(trials)} already in the store" in again.stdout


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--target-ci", "2"], "--target-ci cannot go with --budget"),
        (["--repeats", "5"], "--repeats cannot go with --budget"),
        (["--iterations", "50"], "--iterations cannot go with --budget"),
        (["--budget", "0"], "--budget"),
        (["--budget", "0.01"], "--budget (0.01 min) is below what the pilot"),
        (["--launcher", "submitit-local", "--no-wait"], "cannot go with --no-wait"),
    ],
)
def test_budget_usage_errors_are_one_line_exit_2_before_any_trial(db, extra, says):
    budget = [] if "--budget" in extra else ["--budget", "1"]
    proc = run_cli("run", "--model", "mlp", "--gpu", "cpu", *budget, *extra, "--db", str(db))
    assert_one_line_usage_error(proc, says)
    assert not db.exists()
