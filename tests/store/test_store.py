import multiprocessing
import sqlite3

import pytest

from nnr_profile.core.errors import NnrError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.store.database import Store


def _result(repeat=0, status="ok", times=(1.0, 2.0, 3.0), workload="smallcnn"):
    spec = TrialSpec("torch", workload, MODES["default"], repeat=repeat, iterations=3)
    return TrialResult(
        spec,
        status,
        times_ms=list(times),
        losses=[0.5] * len(times),
        weights_hash="abc",
        error=None if status == "ok" else "boom",
    )


def test_record_and_read_back(db):
    with Store(db) as store:
        store.record(_result())
        trials = store.trials()
        iterations = store.iterations()
    assert len(trials) == 1 and trials.loc[0, "gpu_arch"] == "CPU"
    assert list(iterations["time_ms"]) == [1.0, 2.0, 3.0]


def test_a_cell_is_stored_once_and_failures_are_redone(db):
    with Store(db) as store:
        store.record(_result(status="failed", times=()))
        assert store.done_cells() == set()
        store.record(_result())
        store.record(_result(times=(4.0, 5.0, 6.0)))
        assert len(store.trials()) == 1
        assert list(store.iterations()["time_ms"]) == [4.0, 5.0, 6.0]
        assert store.done_cells() == {_result().spec.cell_key}


def _write_many(db, worker, count):
    with Store(db) as store:
        for repeat in range(count):
            store.record(_result(repeat=repeat, workload=f"w{worker}"))


def test_several_processes_write_one_store_without_losing_a_row(db):
    Store(db).close()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_many, args=(db, w, 40)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    with Store(db) as store:
        assert len(store.trials()) == 160
        assert len(store.iterations()) == 480


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(NnrError, match="no results store"):
        Store(tmp_path / "absent.db", create=False)


def test_corrupt_or_foreign_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(NnrError, match="not an nnr-profile store"):
        Store(junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(NnrError, match=r"not an nnr-profile store \(it has no schema version"):
        Store(other, create=False)
    assert junk.read_bytes().startswith(b"not a database")


def test_hand_edited_values_load_without_crashing(db):
    with Store(db) as store:
        store.record(_result())
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE iterations SET time_ms = 'abc' WHERE iteration = 0")
        conn.execute("UPDATE iterations SET time_ms = -5 WHERE iteration = 1")
        conn.execute("UPDATE environments SET data = '{broken'")
        conn.execute("UPDATE meta SET value = '1'")
    with Store(db, create=False) as store:
        assert list(store.iterations()["time_ms"]) == ["abc", -5.0, 3.0]
        assert store.environment(store.trials().loc[0, "environment_id"]) == {}


def test_reading_opens_read_only_and_a_store_below_a_file_is_a_clear_error(db, tmp_path):
    with Store(db) as store:
        store.record(_result())
    with Store(db, create=False) as store, pytest.raises(NnrError, match="opened read-only"):
        store.record(_result(repeat=1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NnrError, match="cannot create the store"):
        Store(blocker / "nnr.db")
