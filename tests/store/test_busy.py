"""A store locked by another process: the finished result is kept and stored later, never lost."""

import json
import sqlite3
import threading
import time

import numpy as np
import pytest
from conftest import TINY, cli_env, run_cli
from store_samples import trial

from nnr_profile.core.modes import MODES
from nnr_profile.store.database import Store
from nnr_profile.store.pending import Pending
from nnr_profile.store.schema import BUSY_TIMEOUT_ENV
from nnr_profile.studies.replica import ReplicaResult, ReplicaSpec

FAST = 0.2
"""Busy timeout of these tests, seconds (the default is 60)."""


def _hold(path):
    """A second connection holding the store's write lock (BEGIN IMMEDIATE) until closed."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def _count(path, sql="SELECT COUNT(*) FROM trials"):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchone()[0]


def test_a_result_locked_out_waits_pending_and_is_stored_when_the_store_is_next_opened(db):
    Store(db).close()
    holder = _hold(db)
    started = time.monotonic()
    with Store(db, busy_timeout_s=FAST) as store:
        assert store.record(trial(0)) is None
        waited = time.monotonic() - started
        assert list(store.pending.folder.glob("*.json"))
        assert store.done_cells() == {trial(0).spec.cell_key}
    assert waited >= 4 * FAST
    holder.rollback()
    holder.close()
    assert _count(db) == 0
    with Store(db, busy_timeout_s=FAST) as store:
        assert len(store.trials()) == 1 and len(store.iterations()) == 3
        assert len(store.kernels()) == 1
        assert not store.pending.folder.exists()


def test_the_next_write_stores_pending_results_first(db):
    Store(db).close()
    holder = _hold(db)
    with Store(db, busy_timeout_s=FAST) as store:
        assert store.record(trial(0)) is None
        started = time.monotonic()
        assert store.record(trial(1)) is None
        assert time.monotonic() - started < 3 * FAST, "a second locked-out write tries once"
        holder.rollback()
        holder.close()
        assert store.record(trial(2)) is not None
        assert sorted(store.trials()["repeat"]) == [0, 1, 2]
        assert not store.pending.folder.exists()


def test_a_lock_released_during_the_back_off_is_waited_for(db):
    Store(db).close()
    holder = _hold(db)
    release = threading.Timer(2.5 * FAST, holder.rollback)
    release.start()
    try:
        with Store(db, busy_timeout_s=FAST) as store:
            assert store.record(trial(0)) is not None
            assert not store.pending.folder.exists()
    finally:
        release.join()
        holder.close()
    assert _count(db) == 1


def test_a_pending_failure_does_not_replace_a_pending_success(db):
    Store(db).close()
    holder = _hold(db)
    with Store(db, busy_timeout_s=FAST) as store:
        store.record(trial(0, times=(4.0, 4.0, 4.0)))
        store.record(trial(0, status="failed", times=()))
    holder.rollback()
    holder.close()
    with Store(db) as store:
        assert list(store.trials()["status"]) == ["ok"]
        assert list(store.iterations()["time_ms"]) == [4.0] * 3


def test_a_pending_replica_keeps_its_weights(db):
    spec = ReplicaSpec("torch", "mlp", "mnist", "ALGO", 0, 1, 2, MODES["default"], epochs=1)
    weights = np.arange(5, dtype=np.float32)
    result = ReplicaResult(
        spec, "ok", 0.5, predictions=[1, 2], labels=[1, 0], losses=[0.3], weights=weights
    )
    Store(db).close()
    holder = _hold(db)
    with Store(db, busy_timeout_s=FAST) as store:
        assert store.record_replica(result) is None
        assert store.done_replicas() == {spec.replica_key}
    holder.rollback()
    holder.close()
    with Store(db) as store:
        replicas = store.replicas()
        assert len(store.predictions()) == 2
        stored = store.replica_weights(replicas["id"])
    assert np.array_equal(next(iter(stored.values())), weights)


def test_an_unusable_pending_file_is_set_aside_and_the_rest_stored(db):
    Store(db).close()
    holder = _hold(db)
    with Store(db, busy_timeout_s=FAST) as store:
        store.record(trial(0))
        store.record(trial(1))
    holder.rollback()
    holder.close()
    first, _ = sorted(Pending(db).folder.glob("*.json"))
    data = json.loads(first.read_text())
    del data["row"]["framework"]
    first.write_text(json.dumps(data))
    with Store(db) as store:
        assert len(store.trials()) == 1
    assert [p.name for p in store.pending.folder.iterdir()] == [first.with_suffix(".unusable").name]


def test_a_bad_busy_timeout_setting_is_a_clear_error(db, monkeypatch):
    from nnr_profile.core.errors import NnrError

    monkeypatch.setenv(BUSY_TIMEOUT_ENV, "nan")
    with pytest.raises(NnrError, match=f"{BUSY_TIMEOUT_ENV}='nan' must be a number"):
        Store(db)


@pytest.mark.slow
def test_a_sweep_against_a_locked_store_finishes_and_the_rerun_stores_its_results(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "nnr.db"
    Store(db).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        env = {**cli_env(), BUSY_TIMEOUT_ENV: "0.5"}
        args = ("run", "--db", str(db), "--model", "mlp", "--framework", "torch", *TINY)
        proc = subprocess.run(
            [sys.executable, "-m", "nnr_profile.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        assert "2 trial(s) run" in proc.stdout and "stayed locked" in proc.stderr
        assert len(list((tmp_path / "nnr.db.pending").glob("*.json"))) == 2
    finally:
        holder.kill()
        holder.wait()
    assert _count(db) == 0
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "0 trial(s) run, 2 already in the store" in proc.stdout
    assert _count(db) == 2 and not (tmp_path / "nnr.db.pending").exists()
