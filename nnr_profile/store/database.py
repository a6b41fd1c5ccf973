"""The results store: one SQLite file, safe for several writers, resumable by sweep cell.

Tables (times in milliseconds, energy in joules):

- ``trials``: one row per sweep cell (``cell_key`` unique): spec, status, error, weights hash,
  GPU architecture and name (or 'CPU' and the CPU model), ``energy_j``, ``wall_s``.
- ``iterations``: ``trial_id, iteration, time_ms, loss``: every timed iteration, raw.
- ``kernels``: ``trial_id, name, short_name, calls, total_ns``: the kernel table of trials run
  with a kernel collector (all timed iterations together, nanoseconds).
- ``replicas``: one row per variability replica (``replica_key`` unique): workload, dataset,
  noise ``setting``, seeds, mode, schedule, status, ``test_accuracy`` (fraction), per-epoch
  ``losses`` (JSON), final ``weights`` (BLOB of float32, parameters sorted by name).
- ``predictions``: ``replica_id, example, label, prediction``: every test prediction.
- ``example_attributes``: ``dataset, example, attribute, value``: binary attributes of each
  test example (CelebA), for subgroup rates; written once per dataset.
- ``environments``: environment fingerprints as JSON, shared by trials.
- ``meta``: ``schema_version``.

Each trial is written in one transaction that replaces any earlier row of the same cell, so a
sweep killed at any point and re-run ends with exactly one row per cell.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from nnr_profile.core.environment import device_identity, fingerprint_id, host_facts
from nnr_profile.core.errors import NnrError
from nnr_profile.core.specs import STATUS_OK, TrialResult

SCHEMA_VERSION = 1
DEFAULT_DB = Path("nnr-results") / "nnr.db"
BUSY_TIMEOUT_MS = 60_000

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
    finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS iterations (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    iteration INTEGER NOT NULL,
    time_ms REAL NOT NULL,
    loss REAL,
    PRIMARY KEY (trial_id, iteration)
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
CREATE TABLE IF NOT EXISTS example_attributes (
    dataset TEXT NOT NULL,
    example INTEGER NOT NULL,
    attribute TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (dataset, attribute, example)
);
"""

REPLICA_COLUMNS = (
    "id, replica_key, framework, workload, workload_args, dataset, setting, replica, "
    "init_seed, data_seed, mode, epochs, batch_size, learning_rate, device, host, "
    "gpu_arch, gpu_name, status, error, test_accuracy, losses, weights_hash, wall_s, "
    "environment_id, spec, finished_at"
)
"""Columns of ``replicas`` read by `Store.replicas` (all but the weights BLOB)."""


def _store_environment(
    conn: sqlite3.Connection, environment: dict[str, Any] | None, gpu_index: int | None
) -> tuple[str, str, str, str]:
    """Insert a fingerprint (host facts filled in if the process never sent them).

    Returns (environment id, host, gpu_arch, gpu_name).
    """
    environment = environment or {}
    if "host" not in environment:
        environment = {**host_facts(), **environment}
    env_id = fingerprint_id(environment)
    conn.execute(
        "INSERT OR IGNORE INTO environments(id, data) VALUES (?, ?)",
        (env_id, json.dumps(environment, sort_keys=True, default=str)),
    )
    return (env_id, environment.get("host"), *device_identity(environment))


class Store:
    """A results database at `path` (created with its folder on first write)."""

    def __init__(self, path: str | Path = DEFAULT_DB, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise NnrError(
                f"no results store at {self.path}: run 'nnr-profile run' first, or pass --db"
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
            if create:
                with self.transaction() as conn:
                    conn.executescript(SCHEMA)
                    conn.execute(
                        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise NnrError(f"{self.path} is not a readable nnr-profile store: {exc}") from exc

    def _check_schema(self) -> None:
        try:
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            found = "none" if row is None else row[0]
            raise NnrError(
                f"{self.path} has store schema version {found}, this nnr-profile reads "
                f"version {SCHEMA_VERSION}: use a new --db, or the nnr-profile that wrote it"
            )

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading so concurrent writers queue, not fail."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def record(self, result: TrialResult) -> int:
        """Store one trial (replacing an earlier row of its cell); returns the trial id."""
        spec = result.spec
        with self.transaction() as conn:
            env_id, host, gpu_arch, gpu_name = _store_environment(
                conn, result.environment, spec.gpu_index
            )
            conn.execute("DELETE FROM trials WHERE cell_key = ?", (spec.cell_key,))
            cursor = conn.execute(
                """INSERT INTO trials(cell_key, framework, workload, workload_args, mode,
                   mode_knobs, device, gpu_index, host, gpu_arch, gpu_name, batch_size,
                   image_size, warmup, iterations, seed, repeat, status, error, weights_hash,
                   energy_j, wall_s, knobs_applied, environment_id, collector, artifacts, spec)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                           ?, ?, ?)""",
                (
                    spec.cell_key,
                    spec.framework,
                    spec.workload,
                    json.dumps(spec.workload_args, sort_keys=True),
                    spec.mode.name,
                    json.dumps(spec.mode.knobs, sort_keys=True),
                    spec.device_label,
                    spec.gpu_index,
                    host,
                    gpu_arch,
                    gpu_name,
                    spec.batch_size,
                    spec.image_size,
                    spec.warmup,
                    spec.iterations,
                    spec.seed,
                    spec.repeat,
                    result.status,
                    result.error,
                    result.weights_hash,
                    result.energy_j,
                    result.wall_s,
                    json.dumps(result.knobs_applied, sort_keys=True, default=str),
                    env_id,
                    spec.collector,
                    json.dumps(result.artifacts),
                    json.dumps(spec.to_dict(), sort_keys=True),
                ),
            )
            trial_id = int(cursor.lastrowid)
            losses = result.losses or [None] * len(result.times_ms)
            conn.executemany(
                "INSERT INTO iterations(trial_id, iteration, time_ms, loss) VALUES (?, ?, ?, ?)",
                [
                    (trial_id, i, t, loss)
                    for i, (t, loss) in enumerate(zip(result.times_ms, losses, strict=False))
                ],
            )
            conn.executemany(
                "INSERT INTO kernels(trial_id, name, short_name, calls, total_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (trial_id, k["name"], k.get("short_name"), int(k["calls"]), int(k["total_ns"]))
                    for k in result.kernels
                ],
            )
        return trial_id

    @property
    def connection(self) -> sqlite3.Connection:
        """The open SQLite connection (for read queries by report code)."""
        return self._conn

    def done_cells(self) -> set[str]:
        """Cell keys that already have a successful trial."""
        rows = self._conn.execute("SELECT cell_key FROM trials WHERE status = ?", (STATUS_OK,))
        return {row[0] for row in rows}

    def trials(self) -> pd.DataFrame:
        """All trials, one row each (columns as in the ``trials`` table)."""
        return pd.read_sql_query("SELECT * FROM trials ORDER BY id", self._conn)

    def iterations(self) -> pd.DataFrame:
        """Timed iterations of successful trials: trial columns plus iteration, time_ms, loss."""
        return pd.read_sql_query(
            """SELECT t.id AS trial_id, t.framework, t.workload, t.workload_args, t.mode,
                      t.device, t.host, t.gpu_arch, t.gpu_name, t.batch_size, t.image_size,
                      t.repeat, t.collector, i.iteration, i.time_ms, i.loss
               FROM iterations i JOIN trials t ON t.id = i.trial_id
               WHERE t.status = ? ORDER BY t.id, i.iteration""",
            self._conn,
            params=(STATUS_OK,),
        )

    def kernels(self) -> pd.DataFrame:
        """Kernel tables of successful trials: trial columns, name, short_name, calls, total_ns."""
        return pd.read_sql_query(
            """SELECT t.id AS trial_id, t.framework, t.workload, t.workload_args, t.mode,
                      t.device, t.gpu_arch, t.gpu_name, t.batch_size, t.image_size, t.repeat,
                      t.collector, t.iterations, k.name, k.short_name, k.calls, k.total_ns
               FROM kernels k JOIN trials t ON t.id = k.trial_id
               WHERE t.status = ? ORDER BY t.id, k.total_ns DESC""",
            self._conn,
            params=(STATUS_OK,),
        )

    def record_replica(self, result: Any) -> int:
        """Store one variability replica (a `ReplicaResult`), replacing an earlier row of it."""
        spec = result.spec
        weights = None if result.weights is None else result.weights.astype("<f4").tobytes()
        with self.transaction() as conn:
            env_id, host, gpu_arch, gpu_name = _store_environment(
                conn, result.environment, spec.gpu_index
            )
            conn.execute("DELETE FROM replicas WHERE replica_key = ?", (spec.replica_key,))
            cursor = conn.execute(
                """INSERT INTO replicas(replica_key, framework, workload, workload_args, dataset,
                   setting, replica, init_seed, data_seed, mode, epochs, batch_size,
                   learning_rate, device, host, gpu_arch, gpu_name, status, error,
                   test_accuracy, losses, weights, weights_hash, wall_s, environment_id, spec)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                           ?, ?)""",
                (
                    spec.replica_key,
                    spec.framework,
                    spec.workload,
                    json.dumps(spec.workload_args, sort_keys=True),
                    spec.dataset,
                    spec.setting,
                    spec.replica,
                    spec.init_seed,
                    spec.data_seed,
                    spec.mode.name,
                    spec.epochs,
                    spec.batch_size,
                    spec.learning_rate,
                    spec.device_label,
                    host,
                    gpu_arch,
                    gpu_name,
                    result.status,
                    result.error,
                    result.test_accuracy,
                    json.dumps(result.losses),
                    weights,
                    result.weights_hash,
                    result.wall_s,
                    env_id,
                    json.dumps(spec.to_dict(), sort_keys=True),
                ),
            )
            replica_id = int(cursor.lastrowid)
            conn.executemany(
                "INSERT INTO predictions(replica_id, example, label, prediction) "
                "VALUES (?, ?, ?, ?)",
                [
                    (replica_id, i, int(label), int(pred))
                    for i, (label, pred) in enumerate(
                        zip(result.labels, result.predictions, strict=True)
                    )
                ],
            )
        return replica_id

    def done_replicas(self) -> set[str]:
        """Replica keys that already have a successful replica."""
        rows = self._conn.execute("SELECT replica_key FROM replicas WHERE status = ?", (STATUS_OK,))
        return {row[0] for row in rows}

    def replicas(self, weights: bool = False) -> pd.DataFrame:
        """All replicas, one row each (columns as in ``replicas``; ``weights`` only if asked)."""
        columns = "*" if weights else REPLICA_COLUMNS
        return pd.read_sql_query(f"SELECT {columns} FROM replicas ORDER BY id", self._conn)

    def predictions(self) -> pd.DataFrame:
        """Test predictions of successful replicas: replica_id, example, label, prediction."""
        return pd.read_sql_query(
            """SELECT p.replica_id, p.example, p.label, p.prediction
               FROM predictions p JOIN replicas r ON r.id = p.replica_id
               WHERE r.status = ? ORDER BY p.replica_id, p.example""",
            self._conn,
            params=(STATUS_OK,),
        )

    def has_example_attributes(self, dataset: str) -> bool:
        """Whether the test-example attributes of `dataset` are stored."""
        row = self._conn.execute(
            "SELECT 1 FROM example_attributes WHERE dataset = ? LIMIT 1", (dataset,)
        ).fetchone()
        return row is not None

    def record_example_attributes(self, dataset: str, attributes: pd.DataFrame) -> None:
        """Store `dataset`'s test-example attributes (columns example, attribute, value)."""
        rows = zip(
            [dataset] * len(attributes),
            attributes["example"].astype(int).tolist(),
            attributes["attribute"].astype(str).tolist(),
            attributes["value"].astype(int).tolist(),
            strict=True,
        )
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO example_attributes(dataset, example, attribute, value) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def example_attributes(self) -> pd.DataFrame:
        """Stored test-example attributes: dataset, example, attribute, value (bool)."""
        frame = pd.read_sql_query(
            "SELECT dataset, example, attribute, value FROM example_attributes "
            "ORDER BY dataset, attribute, example",
            self._conn,
        )
        return frame.astype({"value": bool})

    def replica_weights(self, replica_ids: Any) -> dict[int, Any]:
        """Final weights (float32 NumPy vectors) of the given replica ids that have them."""
        import numpy as np

        out: dict[int, Any] = {}
        for replica_id in replica_ids:
            row = self._conn.execute(
                "SELECT weights FROM replicas WHERE id = ?", (int(replica_id),)
            ).fetchone()
            if row and row[0] is not None:
                out[int(replica_id)] = np.frombuffer(row[0], dtype="<f4")
        return out

    def environment(self, env_id: str) -> dict[str, Any]:
        """One stored fingerprint."""
        row = self._conn.execute("SELECT data FROM environments WHERE id = ?", (env_id,)).fetchone()
        return json.loads(row[0]) if row else {}
