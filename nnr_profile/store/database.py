"""The results store: one SQLite file, safe for several writers, resumable by sweep cell.

The tables are described in `nnr_profile.store.schema`. Each result is written in one
transaction that replaces any earlier row of the same key, so a sweep killed at any point and
re-run ends with exactly one row per cell; a failed result never replaces a successful one
(`nnr_profile.store.rows`). A write that stays locked out through its retries is kept in
``<store>.pending/`` (`nnr_profile.store.pending`) and stored by the next write or run.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnr_profile.core.errors import NnrError
from nnr_profile.core.specs import STATUS_OK, OpProbe, TrialResult
from nnr_profile.store.pending import Entry, Pending
from nnr_profile.store.rows import (
    describe,
    op_probe_entry,
    replica_entry,
    takes_over,
    trial_entry,
    write_entry,
)
from nnr_profile.store.schema import (
    ADDED_COLUMNS,
    StoreBusy,
    busy_timeout,
    connect,
    guarded,
    table_columns,
)

DEFAULT_DB = Path("nnr-results") / "nnr.db"
RETRY_BACKOFF = (0.1, 0.5, 2.0)
"""Pauses before the further attempts at a busy write, as fractions of the busy timeout."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicaOutputs:
    """A multi-label replica's test outputs: names, predictions and labels (uint8 0/1 matrices,
    examples x outputs)."""

    names: tuple[str, ...]
    predictions: np.ndarray
    labels: np.ndarray

    @classmethod
    def read(cls, names: Any, predictions: Any, labels: Any) -> ReplicaOutputs | None:
        """From the stored columns; None where they are absent or do not fit together."""
        try:
            parsed = json.loads(names) if isinstance(names, str) else None
        except ValueError:
            return None
        if (
            not isinstance(parsed, list)
            or not parsed
            or not all(isinstance(n, str) for n in parsed)
        ):
            return None
        if not (isinstance(predictions, bytes) and isinstance(labels, bytes)):
            return None
        width = len(parsed)
        if len(predictions) != len(labels) or len(predictions) % width:
            return None
        matrices = [
            np.frombuffer(b, dtype=np.uint8).reshape(-1, width) for b in (predictions, labels)
        ]
        return cls(tuple(parsed), matrices[0], matrices[1])


REPLICA_COLUMNS = (
    "id, replica_key, framework, workload, workload_args, dataset, setting, replica, "
    "init_seed, data_seed, mode, epochs, batch_size, learning_rate, device, host, "
    "gpu_arch, gpu_name, status, error, test_accuracy, losses, weights_hash, wall_s, "
    "environment_id, spec, finished_at"
)
"""Columns of ``replicas`` read by `Store.replicas` (all but the weights BLOBs)."""
OP_PROBE_COLUMNS = (
    "id",
    "framework",
    "framework_version",
    "workload",
    "workload_args",
    "mode",
    "device",
    "host",
    "gpu_arch",
    "gpu_name",
    "batch_size",
    "image_size",
    "iterations",
    "source",
    "status",
    "error",
    "complete",
    "finished_at",
)
"""Columns of ``op_probes`` read by `Store.op_probes` (besides the ``op`` of each found op)."""
CELL_MARKS = {"interval": "t", "preset": None}
"""Facts about a sweep's cells kept in ``meta`` (`Store.mark_cells`): name -> unmarked value."""
ID_CHUNK = 500
"""Trial ids per query when a read names them (below SQLite's bound-parameter limit)."""
SAMPLE_COLUMNS = ("trial_id", "sample", "t_s", "sm_clock_mhz", "temperature_c", "power_w")
"""Columns of ``device_samples`` read by `Store.device_samples` (and ``throttle_reasons``)."""


UNUSABLE = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.OperationalError,
    KeyError,
    TypeError,
    AttributeError,
)
"""Errors that make one pending result unusable (a hand-edited or foreign file), not the store."""


class Store:
    """A results database at `path`: opened for writing (created with its folder if absent),
    or read-only with `create=False`.

    `check` runs SQLite's ``quick_check`` on opening (default: when opened for writing);
    `busy_timeout_s` is how long one write waits for another process's lock.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        create: bool = True,
        *,
        check: bool | None = None,
        busy_timeout_s: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.writable = create
        self.busy_timeout_s = busy_timeout() if busy_timeout_s is None else busy_timeout_s
        self.pending = Pending(self.path)
        self._locked_out = False
        self.checked = create if check is None else check
        """Whether SQLite's quick_check ran (and passed) on opening."""
        self._conn = connect(
            self.path,
            write=create,
            check=self.checked,
            busy_timeout_s=self.busy_timeout_s,
        )
        if create and self.pending.entries():
            try:
                self._write(None)
            except StoreBusy:
                self._locked_out = True

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
        if not self.writable:
            raise NnrError(f"the store {self.path} was opened read-only")
        with guarded(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise

    def _write(self, entry: Entry | None) -> int | None:
        """Store the pending results, then `entry`, in one transaction; the id of its row."""
        unusable = []
        with self.transaction() as conn:
            waiting = self.pending.entries()
            for path, pending in waiting:
                conn.execute("SAVEPOINT pending")
                try:
                    write_entry(conn, pending)
                except UNUSABLE as exc:
                    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                        raise
                    conn.execute("ROLLBACK TO pending")
                    unusable.append((path, exc))
                conn.execute("RELEASE pending")
            row_id = None if entry is None else write_entry(conn, entry)
        self.pending.drop([path for path, _ in waiting if path not in dict(unusable)])
        for path, exc in unusable:
            aside = self.pending.set_aside(path)
            log.warning("the pending result %s cannot be stored (%s): set aside", aside, exc)
        return row_id

    def _save(self, entry: Entry) -> int | None:
        """Write `entry`, retrying with back-off while the store is busy; else keep it pending.

        Returns the id of the row of its key, or None when the result waits in the pending
        folder. After one result had to wait, later writes try once until one gets through.
        """
        pauses = () if self._locked_out else [self.busy_timeout_s * f for f in RETRY_BACKOFF]
        for pause in [0.0, *pauses]:
            time.sleep(pause)
            try:
                row_id = self._write(entry)
            except StoreBusy:
                continue
            self._locked_out = False
            return row_id
        self._locked_out = True
        self._keep_pending(entry)
        return None

    def _keep_pending(self, entry: Entry) -> None:
        earlier = self.pending.read(entry.table, entry.key)
        if earlier is not None and not takes_over(entry.status, earlier.status):
            return
        try:
            where = self.pending.keep(entry)
        except OSError as exc:
            raise NnrError(
                f"the store {self.path} stayed locked by another process and the result of "
                f"{describe(entry.row, entry.key)} could not be kept in {self.pending.folder} "
                f"either ({exc.strerror}): free the store and run again"
            ) from exc
        log.warning(
            "the store %s stayed locked by another process: the result of %s waits in %s and is "
            "stored by the next write (or the next run)",
            self.path,
            describe(entry.row, entry.key),
            where,
        )

    def record(self, result: TrialResult) -> int | None:
        """Store one trial (replacing an earlier row of its cell unless that one succeeded and
        this one did not); returns the trial id, or None while the result waits as pending."""
        return self._save(trial_entry(result))

    def record_replica(self, result: Any) -> int | None:
        """Store one variability replica (a `ReplicaResult`) like `record` stores a trial."""
        return self._save(replica_entry(result))

    def record_op_probe(self, probe: OpProbe) -> int | None:
        """Store which ops a probe found, replacing the earlier probe of the same workload,
        framework version and GPU architecture (unless that one succeeded and this did not)."""
        return self._save(op_probe_entry(probe))

    def _has_table(self, table: str) -> bool:
        """Whether the store has `table` (a read-only store written before it was added may not)."""
        with guarded(self.path):
            return bool(table_columns(self._conn, table))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with guarded(self.path):
            return self._conn.execute(sql, params).fetchall()

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """The rows of a read query as a DataFrame (values as stored, unchecked)."""
        with guarded(self.path):
            cursor = self._conn.execute(sql, params)
            rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description]
        return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)

    def cell_statuses(self) -> dict[str, tuple[str, str | None]]:
        """(status, error) of the stored trial of each cell key."""
        rows = self._rows("SELECT cell_key, status, error FROM trials")
        return {key: (status, error) for key, status, error in rows}

    def done_cells(self) -> set[str]:
        """Cell keys that already have a successful trial (stored or pending)."""
        done = {key for key, (status, _) in self.cell_statuses().items() if status == STATUS_OK}
        return done | self.pending.keys("trials", STATUS_OK)

    def trials(self) -> pd.DataFrame:
        """All trials, one row each (columns as in the ``trials`` table; columns added to the
        schema later are None in a store written before them), and one column per CELL_MARKS
        entry: ``interval`` ('sequential' for a cell whose repeats a precision target chose,
        else 't') and ``preset`` (the preset that planned the cell, else None)."""
        frame = self.query("SELECT * FROM trials ORDER BY id")
        for name, _ in ADDED_COLUMNS["trials"]:
            if name not in frame.columns:
                frame[name] = None
        for mark, unmarked in CELL_MARKS.items():
            marks = self.cell_marks(mark)
            frame[mark] = [marks.get(key, unmarked) for key in frame["cell_key"]]
        return frame

    def mark_cells(self, mark: str, cell_keys: Iterable[str], value: str) -> None:
        """Record `value` as the `mark` (a CELL_MARKS name) of these cells, kept in ``meta``
        under ``cells:<mark>``; `trials` shows it as a column of that name."""
        if mark not in CELL_MARKS:
            raise ValueError(f"unknown cell mark {mark!r}")
        with self.transaction() as conn:
            marks = {**self.cell_marks(mark), **dict.fromkeys(cell_keys, value)}
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                (f"cells:{mark}", json.dumps(marks, sort_keys=True)),
            )

    def cell_marks(self, mark: str) -> dict[str, str]:
        """Cell key -> value of `mark` (`mark_cells`; empty when none or unreadable)."""
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (f"cells:{mark}",))
        try:
            found = json.loads(rows[0][0]) if rows else {}
        except (TypeError, ValueError):
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def device_samples(self) -> pd.DataFrame:
        """Raw device samples of successful trials: trial_id, sample, t_s, sm_clock_mhz,
        temperature_c, power_w, throttle_reasons (NVML bit mask); empty where none were taken."""
        columns = [*SAMPLE_COLUMNS, "throttle_reasons"]
        if not self._has_table("device_samples"):
            return pd.DataFrame(columns=columns)
        selected = ", ".join(f"s.{c}" for c in columns)
        return self.query(
            f"""SELECT {selected} FROM device_samples s JOIN trials t ON t.id = s.trial_id
                WHERE t.status = ? ORDER BY s.trial_id, s.sample""",
            (STATUS_OK,),
        )

    def op_probes(self) -> pd.DataFrame:
        """Every op probe, one row per op it found (``op`` None for a probe that found none):
        `OP_PROBE_COLUMNS` (``id`` as probe_id) and ``op``; empty in a store without probes."""
        columns = ["probe_id", *OP_PROBE_COLUMNS[1:], "op"]
        if not self._has_table("op_probes"):
            return pd.DataFrame(columns=columns)
        selected = ", ".join(f"p.{c}" for c in OP_PROBE_COLUMNS[1:])
        return self.query(
            f"""SELECT p.id AS probe_id, {selected}, o.op
                FROM op_probes p LEFT JOIN nondeterministic_ops o ON o.probe_id = p.id
                ORDER BY p.id, o.op"""
        )

    def iterations(self) -> pd.DataFrame:
        """Timed iterations of successful trials: trial columns plus iteration, time_ms, loss."""
        return self.query(
            """SELECT t.id AS trial_id, t.framework, t.workload, t.workload_args, t.mode,
                      t.device, t.host, t.gpu_arch, t.gpu_name, t.batch_size, t.image_size,
                      t.repeat, t.collector, i.iteration, i.time_ms, i.loss
               FROM iterations i JOIN trials t ON t.id = i.trial_id
               WHERE t.status = ? ORDER BY t.id, i.iteration""",
            (STATUS_OK,),
        )

    def timing_times(self, trial_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Iteration times of successful timing trials, values as stored (unchecked): trial_id,
        iteration, time_ms, and the trial's wall_s (seconds); only `trial_ids` when given."""
        sql = """SELECT i.trial_id, i.iteration, i.time_ms, t.wall_s
                 FROM iterations i JOIN trials t ON t.id = i.trial_id
                 WHERE t.status = ? AND t.collector = 'timing'"""
        if trial_ids is None:
            return self.query(sql, (STATUS_OK,))
        ids = [int(i) for i in trial_ids]
        parts = [
            self.query(f"{sql} AND t.id IN ({', '.join('?' * len(chunk))})", (STATUS_OK, *chunk))
            for chunk in (ids[start : start + ID_CHUNK] for start in range(0, len(ids), ID_CHUNK))
        ]
        if not parts:
            return pd.DataFrame(columns=["trial_id", "iteration", "time_ms", "wall_s"])
        return pd.concat(parts, ignore_index=True)

    def kernels(self) -> pd.DataFrame:
        """Kernel tables of successful trials: trial columns, name, short_name, calls, total_ns."""
        return self.query(
            """SELECT t.id AS trial_id, t.framework, t.workload, t.workload_args, t.mode,
                      t.device, t.gpu_arch, t.gpu_name, t.batch_size, t.image_size, t.repeat,
                      t.collector, t.iterations, k.name, k.short_name, k.calls, k.total_ns
               FROM kernels k JOIN trials t ON t.id = k.trial_id
               WHERE t.status = ? ORDER BY t.id, k.total_ns DESC""",
            (STATUS_OK,),
        )

    def done_replicas(self) -> set[str]:
        """Replica keys that already have a successful replica (stored or pending)."""
        rows = self._rows("SELECT replica_key FROM replicas WHERE status = ?", (STATUS_OK,))
        return {row[0] for row in rows} | self.pending.keys("replicas", STATUS_OK)

    def replicas(self, weights: bool = False) -> pd.DataFrame:
        """All replicas, one row each (columns as in ``replicas``; ``weights`` only if asked),
        and ``preset``: the preset that planned the replica (`mark_cells`), else None."""
        columns = "*" if weights else REPLICA_COLUMNS
        frame = self.query(f"SELECT {columns} FROM replicas ORDER BY id")
        marks = self.cell_marks("preset")
        frame["preset"] = [marks.get(key, CELL_MARKS["preset"]) for key in frame["replica_key"]]
        return frame

    def predictions(self) -> pd.DataFrame:
        """Test predictions of successful replicas: replica_id, example, label, prediction."""
        return self.query(
            """SELECT p.replica_id, p.example, p.label, p.prediction
               FROM predictions p JOIN replicas r ON r.id = p.replica_id
               WHERE r.status = ? ORDER BY p.replica_id, p.example""",
            (STATUS_OK,),
        )

    def has_example_attributes(self, dataset: str) -> bool:
        """Whether the test-example attributes of `dataset` are stored."""
        sql = "SELECT 1 FROM example_attributes WHERE dataset = ? LIMIT 1"
        return bool(self._rows(sql, (dataset,)))

    def record_example_attributes(self, dataset: str, attributes: pd.DataFrame) -> None:
        """Store `dataset`'s test-example attributes (columns example, attribute, value)."""
        rows = list(
            zip(
                [dataset] * len(attributes),
                attributes["example"].astype(int).tolist(),
                attributes["attribute"].astype(str).tolist(),
                attributes["value"].astype(int).tolist(),
                strict=True,
            )
        )
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO example_attributes(dataset, example, attribute, value) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def example_attributes(self) -> pd.DataFrame:
        """Stored test-example attributes: dataset, example, attribute, value (bool)."""
        frame = self.query(
            "SELECT dataset, example, attribute, value FROM example_attributes "
            "ORDER BY dataset, attribute, example"
        )
        return frame.astype({"value": bool})

    def replica_weights(
        self, replica_ids: Any, non_trainable: bool = False
    ) -> dict[int, np.ndarray]:
        """Final weights (float32 NumPy vectors) of those replica ids that have readable ones.

        Trainable weights, or with `non_trainable` the BatchNorm moving statistics (an empty
        vector for a model without them; none for replicas stored before they were kept).
        """
        column = "non_trainable_weights" if non_trainable else "weights"
        with guarded(self.path):
            if column not in table_columns(self._conn, "replicas"):
                return {}
        out: dict[int, np.ndarray] = {}
        for replica_id in replica_ids:
            rows = self._rows(f"SELECT {column} FROM replicas WHERE id = ?", (int(replica_id),))
            blob = rows[0][0] if rows else None
            if isinstance(blob, bytes) and len(blob) % 4 == 0:
                out[int(replica_id)] = np.frombuffer(blob, dtype="<f4")
        return out

    def replica_outputs(self, replica_ids: Any) -> dict[int, ReplicaOutputs]:
        """The 0/1 output matrices of those multi-label replica ids that have readable ones."""
        columns = ("output_names", "output_predictions", "output_labels")
        with guarded(self.path):
            if not set(columns) <= set(table_columns(self._conn, "replicas")):
                return {}
        out: dict[int, ReplicaOutputs] = {}
        for replica_id in replica_ids:
            rows = self._rows(
                f"SELECT {', '.join(columns)} FROM replicas WHERE id = ?", (int(replica_id),)
            )
            if rows and (outputs := ReplicaOutputs.read(*rows[0])) is not None:
                out[int(replica_id)] = outputs
        return out

    def environment(self, env_id: str) -> dict[str, Any]:
        """One stored fingerprint ({} when absent or unreadable)."""
        rows = self._rows("SELECT data FROM environments WHERE id = ?", (env_id,))
        try:
            data = json.loads(rows[0][0]) if rows else {}
        except (TypeError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
