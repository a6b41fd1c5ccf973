"""A trial never outlives its sweep: kill -9, SIGTERM, SIGHUP and Ctrl-C of `run` end it.

Real sweeps through the CLI with the test plugin's `hangs` workload (a trial that never ends).
"""

import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, cli_env, run_cli

from nnr_profile.profiler.runner.lifeline import FOLDER_PREFIX

pytestmark = pytest.mark.slow


def _trials(db):
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'trials'").fetchone():
            return pd.DataFrame(columns=["id", "cell_key", "workload", "status"])
        return pd.read_sql_query("SELECT * FROM trials", conn)


def _trial_pids(sweep_pid: int) -> list[int]:
    """Running (not zombie) processes whose command line names a folder of this sweep."""
    mark = f"{FOLDER_PREFIX}{sweep_pid}-".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if mark not in (proc / "cmdline").read_bytes():
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            pids.append(int(proc.name))
    return pids


def _folders(sweep_pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}{sweep_pid}-*"))


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _start_sweep(models: str, db: Path) -> subprocess.Popen:
    args = ["run", "--model", models, *TINY, "--timeout", "600", "--db", str(db)]
    return subprocess.Popen(
        [sys.executable, "-m", "nnr_profile.cli", *args],
        env=cli_env(plugins=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_hanging_trial(sweep: subprocess.Popen, db: Path, stored: int) -> None:
    """Until `stored` trials are in the store and the hanging trial's process runs."""

    def ready() -> bool:
        done = db.exists() and len(_trials(db)) >= stored
        return done and bool(_trial_pids(sweep.pid))

    assert _wait_for(ready, 240), "the hanging trial never started"
    time.sleep(2)  # let it get into its hang (past start-up)


def test_kill_9_of_the_sweep_ends_its_trial_and_a_rerun_resumes_without_duplicates(db):
    sweep = _start_sweep("mlp,hangs", db)
    try:
        _wait_for_hanging_trial(sweep, db, stored=2)
        sweep.kill()
        sweep.communicate()
        assert _wait_for(lambda: not _trial_pids(sweep.pid), 5), "a trial outlived kill -9"
        assert _wait_for(lambda: not _folders(sweep.pid), 5), "a temporary folder was left"
    finally:
        sweep.kill()
    before = _trials(db)
    assert sorted(before["workload"]) == ["mlp", "mlp"]
    proc = run_cli(
        "run", "--model", "mlp,hangs", *TINY, "--timeout", "3", "--db", str(db), plugins=True
    )
    assert proc.returncode == 1, proc.stderr
    assert "0 trial(s) run" not in proc.stdout and "2 already in the store" in proc.stdout
    after = _trials(db)
    assert after["cell_key"].is_unique and len(after) == 4
    assert set(before["id"]) <= set(after["id"])
    assert (after.loc[after["workload"] == "hangs", "status"] == "timeout").all()


@pytest.mark.parametrize(
    ("signum", "status", "says"),
    [
        (signal.SIGTERM, -signal.SIGTERM, "stopped by SIGTERM"),
        (signal.SIGHUP, -signal.SIGHUP, "stopped by SIGHUP"),
        (signal.SIGINT, 130, "aborted"),
    ],
)
def test_a_signal_to_the_sweep_ends_its_trial_and_stores_nothing_for_it(db, signum, status, says):
    sweep = _start_sweep("hangs", db)
    try:
        _wait_for_hanging_trial(sweep, db, stored=0)
        sweep.send_signal(signum)
        _, err = sweep.communicate(timeout=30)
        assert sweep.returncode == status, err
        assert says in err and "Traceback" not in err
        assert _wait_for(lambda: not _trial_pids(sweep.pid), 5), "a trial outlived its sweep"
        assert _wait_for(lambda: not _folders(sweep.pid), 5), "a temporary folder was left"
    finally:
        sweep.kill()
    assert _trials(db).empty
