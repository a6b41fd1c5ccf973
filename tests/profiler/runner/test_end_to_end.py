"""The whole user path through the real CLI: run -> store -> report, failures, resume, workers."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import TINY, cli_env, run_cli

from nnr_profile.reports.overhead_report import OVERHEAD_REPORT_COLUMNS

pytestmark = pytest.mark.slow


def _trials(db):
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT * FROM trials", conn)


def test_run_then_report_writes_every_file(db, tmp_path):
    proc = run_cli("run", "--model", "resnet18,smallcnn", *TINY, "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "4 trial(s) run, 0 already in the store, 0 failed" in proc.stdout
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("overhead.csv", "overhead.md", "overhead.tex", "overhead.png", "overhead.pdf"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "overhead.png").stat().st_size > 10_000
    table = pd.read_csv(out / "overhead.csv")
    assert list(table.columns) == OVERHEAD_REPORT_COLUMNS
    assert sorted(table["workload"]) == ["resnet18_cifar", "smallcnn"]  # resnet18: an alias
    assert set(table["gpu_arch"]) == {"CPU"}
    assert (table["n_trials"] == 1).all() and (table["n_iterations"] == 3).all()


def test_calibrate_recovers_a_large_injected_overhead(db, tmp_path):
    proc = run_cli(
        "run",
        "--model",
        "calibrate",
        "--workload-arg",
        "overhead=1.0",
        "--workload-arg",
        "layers=4",
        "--gpu",
        "cpu",
        "--batch-size",
        "64",
        "--iterations",
        "30",
        "--warmup",
        "5",
        "--repeats",
        "2",
        "--db",
        str(db),
    )
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("report", "--db", str(db), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    row = pd.read_csv(tmp_path / "r" / "overhead.csv").iloc[0]
    assert row["mode"] == "deterministic" and row["baseline_mode"] == "default"
    assert row["overhead_pct"] > 40
    assert row["ci_low_pct"] <= row["overhead_pct"] <= row["ci_high_pct"]


def test_failing_and_hanging_trials_are_stored_and_the_sweep_goes_on(db):
    proc = run_cli(
        "run",
        "--model",
        "raises_when_deterministic,hangs,crashes,mlp",
        *TINY,
        "--timeout",
        "20",
        "--db",
        str(db),
        plugins=True,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "8 trial(s) run, 0 already in the store, 5 failed" in proc.stdout
    assert "5 trial(s) failed" in proc.stderr and "failures.csv" in proc.stderr
    trials = _trials(db).set_index(["workload", "mode"])
    assert trials.loc[("raises_when_deterministic", "default"), "status"] == "ok"
    failed = trials.loc[("raises_when_deterministic", "deterministic")]
    assert failed["status"] == "failed"
    assert "does not have a deterministic implementation" in failed["error"]
    assert (trials.loc["hangs", "status"] == "timeout").all()
    assert trials.loc[("crashes", "default"), "status"] == "failed"
    crashed = trials.loc[("crashes", "default"), "error"]
    assert "killed by SIGABRT" in crashed and crashed.endswith("Fatal Python error: Aborted")
    assert (trials.loc["mlp", "status"] == "ok").all()


def test_a_sweep_killed_with_sigkill_resumes_without_duplicates(db):
    args = [
        sys.executable,
        "-m",
        "nnr_profile.cli",
        "run",
        "--model",
        "mlp,lenet",
        *TINY,
        "--repeats",
        "2",
        "--db",
        str(db),
    ]
    victim = subprocess.Popen(
        args,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        if db.exists() and len(_trials(db)) >= 2:
            break
        time.sleep(0.5)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    before = _trials(db)
    assert 2 <= len(before) < 8
    proc = run_cli("run", "--model", "mlp,lenet", *TINY, "--repeats", "2", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(before)} already in the store" in proc.stdout
    after = _trials(db)
    assert len(after) == 8 and after["cell_key"].is_unique
    assert set(before["id"]) <= set(after["id"])
    with sqlite3.connect(db) as conn:
        per_trial = conn.execute("SELECT COUNT(*) FROM iterations GROUP BY trial_id").fetchall()
    assert per_trial == [(3,)] * 8


def test_two_sweeps_write_one_store_at_once(db):
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nnr_profile.cli",
                "run",
                "--model",
                model,
                *TINY,
                "--repeats",
                "2",
                "--db",
                str(db),
            ],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for model in ("mlp", "lenet")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    trials = _trials(db)
    assert len(trials) == 8 and (trials["status"] == "ok").all()
    assert sorted(trials["workload"].unique()) == ["lenet", "mlp"]
