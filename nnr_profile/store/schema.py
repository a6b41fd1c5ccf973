"""The store's schema and the one way to open a store (schema version and damage checked).

Tables (times in milliseconds, energy in joules):

- ``trials``: one row per sweep cell (``cell_key`` unique): spec, status, error, weights hash,
  GPU architecture and name (or 'CPU' and the CPU model), ``energy_j``, ``wall_s``, and the
  summary of the device samples taken during the timed iterations (``n_device_samples``,
  ``sm_clock_median_mhz``, ``sm_clock_min_mhz``, ``temperature_max_c``, ``power_median_w``,
  ``throttled`` (JSON list of NVML throttle reasons), ``clock_noise`` (text when the clocks
  dropped or throttled)); all NULL where nothing was sampled (the CPU, no NVML): not measured.
- ``iterations``: ``trial_id, iteration, time_ms, loss``: every timed iteration, raw.
- ``device_samples``: ``trial_id, sample, t_s, sm_clock_mhz, temperature_c, power_w,
  throttle_reasons`` (NVML bit mask): the raw NVML samples of a trial's timed iterations.
- ``kernels``: ``trial_id, name, short_name, calls, total_ns``: the kernel table of trials run
  with a kernel collector (all timed iterations together, nanoseconds).
- ``replicas``: one row per variability replica (``replica_key`` unique): workload, dataset,
  noise ``setting``, seeds, mode, schedule, status, ``test_accuracy`` (fraction), per-epoch
  ``losses`` (JSON), final ``weights`` (BLOB of float32, parameters sorted by name) and
  ``non_trainable_weights`` (BLOB of float32: BatchNorm moving statistics sorted by name,
  empty without BatchNorm; NULL in replicas stored before it was added); for a multi-label
  replica (the study's 40-attribute CelebA) ``output_names`` (JSON list) and
  ``output_predictions`` / ``output_labels`` (BLOBs of uint8 0/1, examples x outputs,
  row-major), NULL otherwise.
- ``predictions``: ``replica_id, example, label, prediction``: every test prediction of a
  single-label replica.
- ``example_attributes``: ``dataset, example, attribute, value``: binary attributes of each
  test example (CelebA), for subgroup rates; written once per dataset.
- ``op_probes``: one row per (framework, workload, workload arguments, framework version, GPU
  architecture) probed for ops without a deterministic implementation (``probe_key`` unique),
  by ``nnr-profile ops`` or ``verify --db`` (``source``); ``complete`` is 0 where the run
  stopped at the first such op (TensorFlow raises), so later ops may be missing.
- ``nondeterministic_ops``: ``probe_id, op``: the ops a probe found (none: no row).
- ``environments``: environment fingerprints as JSON, shared by trials.
- ``meta``: ``schema_version``.

Tables and columns added within a schema version are created when a store of that version is
opened for writing (`ADDED_COLUMNS`); a reader of an older store sees them as absent.

Every store is opened through `connect`: the schema version always checked, SQLite's
``quick_check`` run when asked (on opening for writing or merging, and `report --check`). Any
SQLite error leaves through `guarded` as an `NnrError` that names the file and what to do
(`StoreBusy` when another process held the lock too long), never as an sqlite3 traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from nnr_profile.core.errors import NnrError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
"""How long one attempt waits for another process's write lock (SQLite's busy timeout)."""
BUSY_TIMEOUT_ENV = "NNR_STORE_BUSY_TIMEOUT_S"
"""Environment variable that overrides `BUSY_TIMEOUT_S` (seconds)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS environments (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell_key TEXT NOT NULL UNIQUE,
    framework TEXT NOT NULL,
    workload TEXT NOT NULL,
    workload_args TEXT NOT NULL,
    mode TEXT NOT NULL,
    mode_knobs TEXT NOT NULL,
    device TEXT NOT NULL,
    gpu_index INTEGER,
    host TEXT,
    gpu_arch TEXT,
    gpu_name TEXT,
    batch_size INTEGER NOT NULL,
    image_size INTEGER,
    warmup INTEGER NOT NULL,
    iterations INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    repeat INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    weights_hash TEXT,
    energy_j REAL,
    wall_s REAL,
    knobs_applied TEXT,
    environment_id TEXT REFERENCES environments(id),
    collector TEXT NOT NULL DEFAULT 'timing',
    artifacts TEXT,
    spec TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    n_device_samples INTEGER,
    sm_clock_median_mhz REAL,
    sm_clock_min_mhz REAL,
    temperature_max_c REAL,
    power_median_w REAL,
    throttled TEXT,
    clock_noise TEXT
);
CREATE TABLE IF NOT EXISTS iterations (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    iteration INTEGER NOT NULL,
    time_ms REAL NOT NULL,
    loss REAL,
    PRIMARY KEY (trial_id, iteration)
);
CREATE TABLE IF NOT EXISTS device_samples (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    sample INTEGER NOT NULL,
    t_s REAL NOT NULL,
    sm_clock_mhz REAL,
    temperature_c REAL,
    power_w REAL,
    throttle_reasons INTEGER,
    PRIMARY KEY (trial_id, sample)
);
CREATE TABLE IF NOT EXISTS kernels (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    short_name TEXT,
    calls INTEGER NOT NULL,
    total_ns INTEGER NOT NULL,
    PRIMARY KEY (trial_id, name)
);
CREATE TABLE IF NOT EXISTS replicas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    replica_key TEXT NOT NULL UNIQUE,
    framework TEXT NOT NULL,
    workload TEXT NOT NULL,
    workload_args TEXT NOT NULL,
    dataset TEXT NOT NULL,
    setting TEXT NOT NULL,
    replica INTEGER NOT NULL,
    init_seed INTEGER NOT NULL,
    data_seed INTEGER NOT NULL,
    mode TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    batch_size INTEGER NOT NULL,
    learning_rate REAL NOT NULL,
    device TEXT NOT NULL,
    host TEXT,
    gpu_arch TEXT,
    gpu_name TEXT,
    status TEXT NOT NULL,
    error TEXT,
    test_accuracy REAL,
    losses TEXT,
    weights BLOB,
    weights_hash TEXT,
    wall_s REAL,
    environment_id TEXT REFERENCES environments(id),
    spec TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS predictions (
    replica_id INTEGER NOT NULL REFERENCES replicas(id) ON DELETE CASCADE,
    example INTEGER NOT NULL,
    label INTEGER NOT NULL,
    prediction INTEGER NOT NULL,
    PRIMARY KEY (replica_id, example)
);
CREATE TABLE IF NOT EXISTS op_probes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    probe_key TEXT NOT NULL UNIQUE,
    framework TEXT NOT NULL,
    framework_version TEXT,
    workload TEXT NOT NULL,
    workload_args TEXT NOT NULL,
    mode TEXT NOT NULL,
    device TEXT NOT NULL,
    host TEXT,
    gpu_arch TEXT,
    gpu_name TEXT,
    batch_size INTEGER NOT NULL,
    image_size INTEGER,
    iterations INTEGER NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    complete INTEGER NOT NULL,
    wall_s REAL,
    environment_id TEXT REFERENCES environments(id),
    spec TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS nondeterministic_ops (
    probe_id INTEGER NOT NULL REFERENCES op_probes(id) ON DELETE CASCADE,
    op TEXT NOT NULL,
    PRIMARY KEY (probe_id, op)
);
CREATE TABLE IF NOT EXISTS example_attributes (
    dataset TEXT NOT NULL,
    example INTEGER NOT NULL,
    attribute TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (dataset, attribute, example)
);
"""

TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))

ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "trials": (
        ("n_device_samples", "INTEGER"),
        ("sm_clock_median_mhz", "REAL"),
        ("sm_clock_min_mhz", "REAL"),
        ("temperature_max_c", "REAL"),
        ("power_median_w", "REAL"),
        ("throttled", "TEXT"),
        ("clock_noise", "TEXT"),
    ),
    "replicas": (
        ("non_trainable_weights", "BLOB"),
        ("output_names", "TEXT"),
        ("output_predictions", "BLOB"),
        ("output_labels", "BLOB"),
    ),
}
"""Columns (name, SQL type) added to a table after stores of this schema version were written:
`connect` adds the missing ones when it opens an older store for writing (they are NULL in
the rows already there)."""


class StoreBusy(NnrError):
    """Another process held the store's write lock longer than the busy timeout."""


def quote(identifier: str) -> str:
    """An SQL identifier quoted for SQLite (a name read from a file may hold any character)."""
    return '"' + str(identifier).replace('"', '""') + '"'


def busy_timeout() -> float:
    """The busy timeout in seconds: `BUSY_TIMEOUT_S`, or the `NNR_STORE_BUSY_TIMEOUT_S` value."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "")
    if not text:
        return BUSY_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise NnrError(f"{BUSY_TIMEOUT_ENV}={text!r} must be a number of seconds above 0")
    return value


def store_error(path: Path, exc: sqlite3.Error) -> NnrError:
    """The one-line error for an sqlite3 error on the store at `path`."""
    text = str(exc)
    name = getattr(exc, "sqlite_errorname", "")
    recover = f"`sqlite3 {shlex.quote(str(path))} .recover | sqlite3 recovered.db` may save it"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or text.startswith(
        ("database is locked", "database table is locked")
    ):
        return StoreBusy(f"the store {path} is locked by another process ({text})")
    if name.startswith("SQLITE_NOTADB") or "file is not a database" in text:
        return NnrError(
            f"{path} is not an nnr-profile store, or its first page is damaged ({text}); "
            f"if it is a store, {recover}"
        )
    if (
        name.startswith("SQLITE_CORRUPT")
        or "malformed" in text
        or type(exc) is sqlite3.DatabaseError
    ):
        return NnrError(f"the store {path} is damaged ({text}); {recover}")
    return NnrError(f"cannot use the store {path}: {text}")


@contextmanager
def guarded(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors raised inside (also as pandas' DatabaseError) into `store_error`s."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(path, exc) from exc
    except pd.errors.DatabaseError as exc:
        cause = exc.__cause__
        if isinstance(cause, sqlite3.Error):
            raise store_error(path, cause) from exc
        raise NnrError(f"cannot use the store {path}: {exc}") from exc


def connect(
    path: str | Path, write: bool, check: bool, busy_timeout_s: float | None = None
) -> sqlite3.Connection:
    """Open the store at `path`: the one way in; read-only unless `write` (then created if new).

    A read-only connection is SQLite's ``query_only`` one (it tidies the WAL files on closing),
    or a ``mode=ro`` one where the file or its folder is not writable.

    `check` runs SQLite's ``quick_check`` first (every page read: seconds on a large store);
    the schema version is always checked.
    """
    path = Path(path)
    timeout = busy_timeout() if busy_timeout_s is None else busy_timeout_s
    if not write and not path.is_file():
        raise NnrError(f"no results store at {path}: run 'nnr-profile run' first, or pass the path")
    if write:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NnrError(
                f"cannot create the store {path}: {exc.strerror} ({exc.filename})"
            ) from exc
    with guarded(path):
        if write or (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            conn = sqlite3.connect(path, timeout=timeout)
        else:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        try:
            if not write:
                conn.execute("PRAGMA query_only = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if check:
                _quick_check(conn, path)
            if write and not _table_names(conn):
                _create_schema(conn)
            _check_schema(conn, path)
            if write and not set(TABLES) <= _table_names(conn):
                _create_schema(conn)
            if write and missing_columns(conn):
                _add_columns(conn)
        except BaseException:
            conn.close()
            raise
    return conn


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Raise the damaged-store error when SQLite's ``quick_check`` finds problems."""
    lines = [line for (text,) in conn.execute("PRAGMA quick_check") for line in text.splitlines()]
    problems = [line for line in lines if line != "ok" and not line.startswith("***")]
    if problems:
        more = f" and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
        raise store_error(path, sqlite3.DatabaseError(f"quick_check: {problems[0]}{more}"))


def _table_names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _create_schema(conn: sqlite3.Connection) -> None:
    """Create the store's tables (those missing: an older store of this version may lack some)."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    version = "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{}');"
    conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA}{version.format(SCHEMA_VERSION)}COMMIT;")


def table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names of `table` in the store (empty when it has no such table)."""
    return {row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}


def missing_columns(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str]]]:
    """Per table, the `ADDED_COLUMNS` (name, type) that this store's table lacks."""
    missing = {}
    for table, columns in ADDED_COLUMNS.items():
        have = table_columns(conn, table)
        lacking = [(name, kind) for name, kind in columns if have and name not in have]
        if lacking:
            missing[table] = lacking
    return missing


def _add_columns(conn: sqlite3.Connection) -> None:
    """Add the missing `ADDED_COLUMNS` in one transaction (another writer may just have)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, columns in missing_columns(conn).items():
            for name, kind in columns:
                conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {kind}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not a store of this schema version."""
    if "meta" not in _table_names(conn):
        raise NnrError(
            f"{path} is an SQLite file but not an nnr-profile store (it has no schema version): "
            "pass a store that nnr-profile wrote"
        )
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    found = "none" if row is None else row[0]
    if str(found) != str(SCHEMA_VERSION):
        raise NnrError(
            f"{path} has store schema version {found}, this nnr-profile writes version "
            f"{SCHEMA_VERSION}: stores of different versions cannot be read or merged together; "
            "use the nnr-profile version that wrote it"
        )
