"""Merging stores: one copy per cell, newer runs win, children follow, versions are checked."""

import hashlib
import sqlite3

import pytest
from conftest import run_cli

from nnr_profile.core.errors import NnrError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.store.database import Store
from nnr_profile.store.merge import merge_stores, open_results
from nnr_profile.store.schema import SCHEMA_VERSION


def _result(repeat, times=(1.0, 2.0, 3.0), status="ok"):
    spec = TrialSpec("torch", "mlp", MODES["default"], repeat=repeat, iterations=3)
    return TrialResult(
        spec,
        status,
        times_ms=list(times),
        losses=[0.5] * len(times),
        weights_hash="abc",
        kernels=[{"name": "gemm", "short_name": "gemm", "calls": 3, "total_ns": 900}],
    )


def _store(path, results, finished_at):
    with Store(path) as store:
        for result in results:
            store.record(result)
        with store.transaction() as conn:
            conn.execute("UPDATE trials SET finished_at = ?", (finished_at,))
    return path


def _rows(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_overlapping_cells_are_kept_once_and_the_newer_run_wins(tmp_path):
    old = _store(tmp_path / "a.db", [_result(0), _result(1)], "2025-01-01T00:00:00.000Z")
    new = _store(
        tmp_path / "b.db", [_result(1, (7.0, 8.0, 9.0)), _result(2)], "2025-02-01T00:00:00.000Z"
    )
    target = tmp_path / "merged.db"
    outcome = merge_stores([old, new], target)
    assert outcome.added["trials"] == 3 and outcome.replaced["trials"] == 1
    assert _rows(target, "SELECT repeat FROM trials ORDER BY repeat") == [(0,), (1,), (2,)]
    assert _rows(target, "SELECT COUNT(*) FROM iterations") == [(9,)]
    assert _rows(target, "SELECT COUNT(*) FROM kernels") == [(3,)]
    assert _rows(target, "SELECT COUNT(*) FROM environments") == [(1,)]
    times = _rows(
        target,
        "SELECT i.time_ms FROM iterations i JOIN trials t ON t.id = i.trial_id "
        "WHERE t.repeat = 1 ORDER BY i.iteration",
    )
    assert times == [(7.0,), (8.0,), (9.0,)]
    orphans = "SELECT COUNT(*) FROM {} WHERE trial_id NOT IN (SELECT id FROM trials)"
    assert _rows(target, orphans.format("iterations")) == [(0,)]
    assert _rows(target, orphans.format("kernels")) == [(0,)]

    again = merge_stores([old, new], target)
    assert again.kept["trials"] == 4 and not again.added and not again.replaced
    assert _rows(target, "SELECT COUNT(*) FROM iterations") == [(9,)]


def test_an_older_copy_does_not_replace_the_target_one(tmp_path):
    target = _store(tmp_path / "t.db", [_result(0, (5.0, 5.0, 5.0))], "2025-03-01T00:00:00.000Z")
    older = _store(tmp_path / "o.db", [_result(0)], "2025-01-01T00:00:00.000Z")
    outcome = merge_stores([older], target)
    assert outcome.kept == {"trials": 1}
    assert _rows(target, "SELECT time_ms FROM iterations") == [(5.0,)] * 3


def test_tables_added_later_merge_generically(tmp_path):
    extra = """
        CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, note_key TEXT NOT NULL UNIQUE,
                            finished_at TEXT NOT NULL);
        CREATE TABLE note_lines (note_id INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
                                 line INTEGER NOT NULL, text TEXT, PRIMARY KEY (note_id, line));
    """
    paths = []
    for name, stamp, words in (("a", "2025-01", ["x", "y"]), ("b", "2025-02", ["z"])):
        path = tmp_path / f"{name}.db"
        Store(path).close()
        with sqlite3.connect(path) as conn:
            conn.executescript(extra)
            conn.execute(
                "INSERT INTO notes(id, note_key, finished_at) VALUES (5, 'k', ?)", (stamp,)
            )
            conn.executemany(
                "INSERT INTO note_lines VALUES (5, ?, ?)", [(i, w) for i, w in enumerate(words)]
            )
        paths.append(path)
    target = tmp_path / "t.db"
    Store(target).close()
    with sqlite3.connect(target) as conn:
        conn.executescript(extra)
    outcome = merge_stores(paths, target)
    assert outcome.added["notes"] == 1 and outcome.replaced["notes"] == 1
    assert _rows(target, "SELECT text FROM note_lines") == [("z",)]


def test_a_store_of_another_schema_version_is_refused_and_the_target_untouched(tmp_path):
    good = _store(tmp_path / "good.db", [_result(0)], "2025-01-01T00:00:00.000Z")
    bad = _store(tmp_path / "bad.db", [_result(1)], "2025-01-01T00:00:00.000Z")
    with sqlite3.connect(bad) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    target = _store(tmp_path / "target.db", [_result(2)], "2025-01-01T00:00:00.000Z")
    before = _digest(target)
    with pytest.raises(
        NnrError, match=f"schema version 99, this nnr-profile writes version {SCHEMA_VERSION}"
    ):
        merge_stores([good, bad], target)
    assert _digest(target) == before
    with pytest.raises(NnrError, match="schema version 99"):
        merge_stores([good, bad], tmp_path / "new.db")
    assert not (tmp_path / "new.db").exists()


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(NnrError, match="not an nnr-profile store"):
        merge_stores([junk], tmp_path / "t.db")
    with pytest.raises(NnrError, match="no results store"):
        merge_stores([tmp_path / "absent.db"], tmp_path / "t.db")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NnrError, match="no stores"):
        merge_stores([tmp_path / "empty"], tmp_path / "t.db")
    assert not (tmp_path / "t.db").exists()


def test_a_folder_of_stores_reads_as_one_store(tmp_path):
    shards = tmp_path / "shards"
    _store(shards / "one.db", [_result(0)], "2025-01-01T00:00:00.000Z")
    _store(shards / "two.db", [_result(1)], "2025-01-01T00:00:00.000Z")
    with open_results(shards) as store:
        assert sorted(store.trials()["repeat"]) == [0, 1]
        assert len(store.iterations()) == 6
    with open_results(tmp_path) as store:
        assert len(store.trials()) == 2


def test_merge_cli_unions_stores_and_refuses_bad_versions_in_one_line(tmp_path):
    a = _store(tmp_path / "a.db", [_result(0), _result(1)], "2025-01-01T00:00:00.000Z")
    b = _store(tmp_path / "b.db", [_result(1), _result(2)], "2025-01-01T00:00:00.000Z")
    out = tmp_path / "out.db"
    proc = run_cli("merge", str(a), str(b), "--db", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "merged 2 store(s)" in proc.stdout and "3 added" in proc.stdout
    assert _rows(out, "SELECT COUNT(*) FROM trials") == [(3,)]
    with sqlite3.connect(b) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    before = _digest(out)
    proc = run_cli("merge", str(a), str(b), "--db", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "schema version 0" in lines[0], proc.stderr
    assert _digest(out) == before
    help_text = run_cli("merge", "--help").stdout
    assert "Example" in help_text


def test_a_newer_failed_run_never_replaces_a_successful_one_and_is_named(tmp_path):
    good = _store(tmp_path / "good.db", [_result(0), _result(1)], "2025-01-01T00:00:00.000Z")
    failed = _store(
        tmp_path / "failed.db",
        [_result(0, times=(), status="failed"), _result(2, times=(), status="failed")],
        "2025-06-01T00:00:00.000Z",
    )
    outcome = merge_stores([good, failed], tmp_path / "t.db")
    rows = _rows(tmp_path / "t.db", "SELECT repeat, status FROM trials ORDER BY repeat")
    assert rows == [(0, "ok"), (1, "ok"), (2, "failed")]
    assert _rows(tmp_path / "t.db", "SELECT COUNT(*) FROM iterations") == [(6,)]
    assert outcome.kept_successful == {"trials": ["mlp torch default cpu repeat 0"]}
    assert "1 successful kept over a newer failure" in outcome.summary()
    assert outcome.kept_lines() == [
        "kept 1 successful trials row(s) where a source had a newer failed run: "
        "mlp torch default cpu repeat 0"
    ]
    older_good = _store(tmp_path / "older.db", [_result(2)], "2024-01-01T00:00:00.000Z")
    again = merge_stores([older_good], tmp_path / "t.db")
    assert again.replaced == {"trials": 1}
    assert _rows(tmp_path / "t.db", "SELECT status FROM trials WHERE repeat = 2") == [("ok",)]


def test_a_failed_rerun_does_not_replace_a_stored_success(tmp_path):
    with Store(tmp_path / "s.db") as store:
        first = store.record(_result(0, times=(4.0, 4.0, 4.0)))
        assert store.record(_result(0, times=(), status="failed")) == first
        assert list(store.iterations()["time_ms"]) == [4.0] * 3


def test_table_and_column_names_with_quotes_merge(tmp_path):
    extra = """
        CREATE TABLE "odd""name" (id INTEGER PRIMARY KEY, "key""col" TEXT UNIQUE,
                                  "val ue" TEXT, finished_at TEXT);
        CREATE TABLE "odd""child" (parent INTEGER REFERENCES "odd""name"(id), "x]" TEXT);
    """
    paths = []
    for name, stamp in (("a", "2025-01"), ("b", "2025-02")):
        path = tmp_path / f"{name}.db"
        Store(path).close()
        with sqlite3.connect(path) as conn:
            conn.executescript(extra)
            conn.execute("""INSERT INTO "odd""name" VALUES (3, 'k', ?, ?)""", (name, stamp))
            conn.execute("""INSERT INTO "odd""child" VALUES (3, ?)""", (name,))
        paths.append(path)
    target = tmp_path / "t.db"
    Store(target).close()
    with sqlite3.connect(target) as conn:
        conn.executescript(extra)
    outcome = merge_stores(paths, target)
    assert outcome.added['odd"name'] == 1 and outcome.replaced['odd"name'] == 1
    assert _rows(target, """SELECT "val ue" FROM "odd""name\"""") == [("b",)]
    assert _rows(target, """SELECT "x]" FROM "odd""child\"""") == [("b",)]
