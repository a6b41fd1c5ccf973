"""One overhead pipeline: report, gate, compare, precision on demand and the API agree exactly."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from conftest import paired_store

from nnr_profile.api import open_store
from nnr_profile.core.modes import parse_modes
from nnr_profile.core.specs import TrialResult
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
from nnr_profile.reports.compare import load_side
from nnr_profile.reports.report import write_report
from nnr_profile.store.database import Store
from nnr_profile.studies.gate import GateRequest, judge_store
from nnr_profile.studies.precision import precision_table


def _tables(db, tmp_path, spec):
    """The overhead rows of report, gate, compare, the API and precision on demand, by key."""
    key = ["framework", "workload", "baseline_mode", "mode"]
    precision, _ = precision_table(spec, db, spec.repeats, 5.0) if spec else (None, None)
    report = write_report(db, tmp_path / "report").overhead.set_index(key)
    request = GateRequest(None, "torch", "default", "deterministic", 1.5, tmp_path / "gate", db)
    gate = judge_store(request, db, None).table.set_index(key)
    compared = load_side(db).overhead.set_index(key)
    with open_store(db) as results:
        api = results.overhead().set_index(key)
    return report, gate, compared, api, None if precision is None else precision.set_index(key)


def _agree(report, gate, compared, api, others, columns):
    row = report.loc[("torch", "mlp", "default", "deterministic")]
    for other in [compared, api, *others]:
        mine = other.loc[row.name]
        for column in columns:
            assert mine[column] == row[column], column
    for column in ("ratio", "noisy", "note", "interval"):
        assert compared.loc[row.name, column] == api.loc[row.name, column] == row[column]
    judged = gate.loc[row.name]
    assert judged["ratio"] == row["ratio"] and bool(judged["noisy"]) is True
    assert judged["ci_low_ratio"] == pytest.approx(1 + row["ci_low_pct"] / 100, abs=1e-12)
    assert judged["ci_high_ratio"] == pytest.approx(1 + row["ci_high_pct"] / 100, abs=1e-12)
    assert judged["interval"] == row["interval"] and judged["verdict"] == "pass"
    return row


def test_report_gate_compare_and_api_give_the_same_rows(tmp_path):
    db = tmp_path / "nnr.db"
    paired_store(db)
    report, gate, compared, api, _ = _tables(db, tmp_path, None)
    row = _agree(report, gate, compared, api, [], ("ci_low_pct", "ci_high_pct", "n_pairs"))
    assert bool(row["noisy"]) and "sw_power_cap" in row["note"] and row["interval"] == "t"
    assert row["ratio"] == pytest.approx(1.2, rel=0.05)


def test_after_precision_on_demand_all_five_carry_the_sequential_interval(tmp_path):
    db = tmp_path / "nnr.db"
    spec = paired_store(db)
    report, gate, compared, api, precision = _tables(db, tmp_path, spec)
    columns = ("ci_low_pct", "ci_high_pct", "t_ci_low_pct", "t_ci_high_pct", "n_pairs")
    row = _agree(report, gate, compared, api, [precision], columns)
    assert row["interval"] == "sequential" and precision.loc[row.name, "interval"] == "sequential"
    assert row["ci_low_pct"] < row["t_ci_low_pct"] and row["ci_high_pct"] > row["t_ci_high_pct"]


def test_the_gate_fails_when_trials_failed_and_names_them(tmp_path):
    db = tmp_path / "nnr.db"
    spec = SweepSpec(
        workloads=(("torch", "mlp"),), modes=tuple(parse_modes("default,deterministic"))
    )
    with Store(db) as store:
        for cell in plan_sweep(spec)[None]:
            store.record(TrialResult(cell, "failed", error="RuntimeError: no kernel"))
    request = GateRequest("mlp", "torch", "default", "deterministic", 1.3, tmp_path / "g", db)
    outcome = judge_store(request, db, [("torch", "mlp")])
    (row,) = outcome.document["rows"]
    assert outcome.verdict == "fail" and outcome.document["exit_code"] == 1
    assert row["n_failed_trials"] == 6 and "RuntimeError: no kernel" in row["note"]


def test_an_impossible_iteration_is_left_out_and_named(tmp_path):
    db = tmp_path / "nnr.db"
    paired_store(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE iterations SET time_ms = 1e12 WHERE trial_id = 1 AND iteration = 0")
    report = write_report(db, tmp_path / "report")
    skipped = pd.read_csv(tmp_path / "report" / "skipped_iterations.csv")
    assert list(skipped["reason"]) == ["longer than its trial's wall time"]
    assert any("left out as unusable" in note for note in report.notes)
    assert report.overhead["ratio"].iloc[0] == pytest.approx(1.2, rel=0.05)


def test_the_report_names_the_recipes_when_rows_ran_different_ones():
    from nnr_profile.reports.report import recipe_notes

    adam = '{"recipe": {"optimizer": "adam", "learning_rate": 0.001, "loss": "ce", "output": "x"}}'
    sgd = '{"recipe": {"optimizer": "sgd", "learning_rate": 0.01, "loss": "ce", "output": "x"}}'
    trials = pd.DataFrame(
        {"framework": ["tf", "torch"], "workload": ["vgg16", "lenet"], "knobs_applied": [adam, sgd]}
    )
    (note,) = recipe_notes(trials)
    assert "tf/vgg16: adam lr 0.001, ce on x" in note and "torch/lenet: sgd lr 0.01" in note
    assert (
        recipe_notes(trials.iloc[:1]) == []
        and recipe_notes(trials.assign(knobs_applied="{}")) == []
    )
