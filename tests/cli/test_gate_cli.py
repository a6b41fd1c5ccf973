"""`gate --from-db` and `verify --across` as CI sees them: failed trials fail, options that
do not apply are refused."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_usage_error, paired_store, run_cli

from nnr_profile.core.modes import parse_modes
from nnr_profile.core.specs import TrialResult
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
from nnr_profile.store.database import Store


def test_gate_from_db_without_model_judges_every_stored_model(tmp_path):
    db = tmp_path / "nnr.db"
    paired_store(db)
    proc = run_cli("gate", "--from-db", str(db), "--max-ratio", "1.5", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "mlp (torch" in proc.stdout and "gate: PASS (exit 0)" in proc.stdout


def test_gate_over_failed_trials_fails_and_names_them(tmp_path):
    db = tmp_path / "nnr.db"
    spec = SweepSpec(workloads=(("torch", "mlp"),), modes=tuple(parse_modes("default,fast")))
    with Store(db) as store:
        for cell in plan_sweep(spec)[None]:
            store.record(TrialResult(cell, "failed", error="RuntimeError: no kernel"))
    proc = run_cli(
        "gate", "--from-db", str(db), "--mode", "fast", "--max-ratio", "1.3", "--out", str(tmp_path)
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "6 trial(s) failed" in proc.stdout and "RuntimeError: no kernel" in proc.stdout
    assert "INCONCLUSIVE" not in proc.stdout
    document = json.loads((tmp_path / "gate.json").read_text())
    assert document["verdict"] == "fail" and document["rows"][0]["n_failed_trials"] == 6


@pytest.mark.parametrize(
    ("option", "flag"),
    [
        (["--target-ci", "2"], "--target-ci"),
        (["--repeats", "9"], "--repeats"),
        (["--collector", "nsys"], "--collector"),
        (["--db", "other.db"], "--db"),
    ],
)
def test_gate_from_db_refuses_options_of_its_trials(tmp_path, option, flag):
    db = tmp_path / "nnr.db"
    paired_store(db)
    proc = run_cli("gate", "--from-db", str(db), "--max-ratio", "1.5", *option)
    assert_one_line_usage_error(proc, flag, "does not apply with --from-db")


def test_report_without_a_store_leaves_no_empty_folder(tmp_path):
    proc = run_cli("report", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "o" / "p"))
    assert_one_line_usage_error(proc, "no results store")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("option", "flag"),
    [
        (["--gpu", "7"], "--gpu"),
        (["--model", "resnet18"], "--model"),
        (["--resume-at", "3"], "--resume-at"),
    ],
)
def test_verify_across_refuses_options_of_its_runs(tmp_path, option, flag):
    db = tmp_path / "nnr.db"
    paired_store(db)
    proc = run_cli("verify", "--across", str(db), str(db), *option)
    assert_one_line_usage_error(proc, flag, "does not apply with --across")
