"""The rows that store one result, and which result a key keeps (a success over a failure).

A trial is a ``trials`` row with its ``iterations`` and ``kernels``; a variability replica a
``replicas`` row with its ``predictions``; both with their environment fingerprint. Built as an
`Entry`, so a result that cannot be written now can wait as a pending file unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
from datetime import datetime, timezone
from typing import Any

import numpy as np

from nnr_profile.core.environment import (
    device_identity,
    fingerprint_id,
    framework_version,
    host_facts,
)
from nnr_profile.core.specs import STATUS_OK, OpProbe, TrialResult
from nnr_profile.store.pending import Entry
from nnr_profile.store.schema import quote

DESCRIBING_COLUMNS = ("workload", "framework", "mode", "device", "setting", "replica", "repeat")
"""Columns that name a result row for people, where a table has them."""
IDENTITY = {
    "trials": ("cell_key", "trial_id"),
    "replicas": ("replica_key", "replica_id"),
    "op_probes": ("probe_key", "probe_id"),
}
"""Result tables: (identity key column, the column of their child rows that points at them)."""


log = logging.getLogger(__name__)


def takes_over(new_status: str | None, old_status: str | None, newer: bool = True) -> bool:
    """Whether a result replaces the stored one of its key: success first, then the newer run."""
    new_ok, old_ok = new_status == STATUS_OK, old_status == STATUS_OK
    return new_ok if new_ok != old_ok else newer


def describe(row: dict[str, Any], fallback: str) -> str:
    """A result row's name for people ('mlp torch default cpu repeat 0'), else `fallback`."""
    named = [
        f"{column} {row[column]}" if column in ("replica", "repeat") else str(row[column])
        for column in DESCRIBING_COLUMNS
        if column in row
    ]
    return " ".join(named) or fallback


def _now() -> str:
    """UTC now in the format of the tables' ``finished_at`` default."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _environment(environment: dict[str, Any] | None) -> tuple[tuple[str, str], dict[str, Any]]:
    """(fingerprint id, JSON) of an environment (host facts filled in) and its identity columns."""
    environment = environment or {}
    if "host" not in environment:
        environment = {**host_facts(), **environment}
    gpu_arch, gpu_name = device_identity(environment)
    stored = (fingerprint_id(environment), json.dumps(environment, sort_keys=True, default=str))
    identity = {"host": environment.get("host"), "gpu_arch": gpu_arch, "gpu_name": gpu_name}
    return stored, {"environment_id": stored[0], **identity}


def _spec_columns(spec: Any) -> dict[str, Any]:
    """Columns that trials and replicas share, from a TrialSpec or ReplicaSpec."""
    return {
        "framework": spec.framework,
        "workload": spec.workload,
        "workload_args": json.dumps(spec.workload_args, sort_keys=True),
        "mode": spec.mode.name,
        "device": spec.device_label,
        "batch_size": spec.batch_size,
        "spec": json.dumps(spec.to_dict(), sort_keys=True),
    }


DEVICE_SUMMARY_KEYS = (
    "sm_clock_median_mhz",
    "sm_clock_min_mhz",
    "temperature_max_c",
    "power_median_w",
    "clock_noise",
)
"""Keys of a trial's device summary stored as ``trials`` columns of the same name."""
SAMPLE_KEYS = ("t_s", "sm_clock_mhz", "temperature_c", "power_w", "throttle_reasons")
"""Keys of one device sample, stored as ``device_samples`` columns of the same name."""


def _measured(value: Any) -> Any:
    """`value`, or None where it is missing or NaN (not measured)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def device_columns(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The ``trials`` columns of a device summary: all None when nothing was sampled."""
    summary = summary or {}
    count = _measured(summary.get("n_samples"))
    if not count:
        return {"n_device_samples": None, "throttled": None} | dict.fromkeys(DEVICE_SUMMARY_KEYS)
    throttled = summary.get("throttled")
    return {
        "n_device_samples": int(count),
        **{key: _measured(summary.get(key)) for key in DEVICE_SUMMARY_KEYS},
        "throttled": None if throttled is None else json.dumps(sorted(throttled)),
    }


def sample_rows(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``device_samples`` rows (sample number first) of a trial's raw device samples."""
    rows = []
    for index, sample in enumerate(samples):
        row = {"sample": index, **{key: _measured(sample.get(key)) for key in SAMPLE_KEYS}}
        if row["throttle_reasons"] is not None:
            row["throttle_reasons"] = int(row["throttle_reasons"])
        rows.append(row)
    return rows


def trial_entry(result: TrialResult) -> Entry:
    """The rows that store one trial."""
    spec = result.spec
    environment, identity = _environment(result.environment)
    row = {
        "cell_key": spec.cell_key,
        **_spec_columns(spec),
        **identity,
        "mode_knobs": json.dumps(spec.mode.knobs, sort_keys=True),
        "gpu_index": spec.gpu_index,
        "image_size": spec.image_size,
        "warmup": spec.warmup,
        "iterations": spec.iterations,
        "seed": spec.seed,
        "repeat": spec.repeat,
        "status": result.status,
        "error": result.error,
        "weights_hash": result.weights_hash,
        "energy_j": result.energy_j,
        "wall_s": result.wall_s,
        "knobs_applied": json.dumps(result.knobs_applied, sort_keys=True, default=str),
        "collector": spec.collector,
        "artifacts": json.dumps(result.artifacts),
        "finished_at": _now(),
        **device_columns(result.device),
    }
    losses = result.losses or [None] * len(result.times_ms)
    iterations = [
        {"iteration": i, "time_ms": t, "loss": loss}
        for i, (t, loss) in enumerate(zip(result.times_ms, losses, strict=False))
    ]
    kernels = [
        {
            "name": k["name"],
            "short_name": k.get("short_name"),
            "calls": int(k["calls"]),
            "total_ns": int(k["total_ns"]),
        }
        for k in result.kernels
    ]
    children = {
        "iterations": iterations,
        "kernels": kernels,
        "device_samples": sample_rows(result.device_samples),
    }
    return Entry("trials", spec.cell_key, row, children, environment)


def probe_key(probe: OpProbe) -> str:
    """What one op probe stands for: framework, workload and arguments, version, GPU arch."""
    spec = probe.spec
    gpu_arch, _ = device_identity(probe.environment or {})
    identity = {
        "framework": spec.framework,
        "framework_version": framework_version(probe.environment or {}, spec.framework),
        "workload": spec.workload,
        "workload_args": spec.workload_args,
        "gpu_arch": gpu_arch,
    }
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def op_probe_entry(probe: OpProbe) -> Entry:
    """The rows that store one op probe (an `OpProbe`) and the ops it found."""
    spec = probe.spec
    environment, identity = _environment(probe.environment)
    key = probe_key(probe)
    row = {
        "probe_key": key,
        **_spec_columns(spec),
        **identity,
        "framework_version": framework_version(probe.environment or {}, spec.framework),
        "image_size": spec.image_size,
        "iterations": spec.warmup + spec.iterations,
        "source": probe.source,
        "status": probe.status,
        "error": probe.error,
        "complete": int(bool(probe.complete)),
        "wall_s": probe.wall_s,
        "finished_at": _now(),
    }
    ops = [{"op": op} for op in sorted(set(probe.ops))]
    return Entry("op_probes", key, row, {"nondeterministic_ops": ops}, environment)


def replica_entry(result: Any) -> Entry:
    """The rows that store one variability replica (a `ReplicaResult`)."""
    spec = result.spec
    environment, identity = _environment(result.environment)
    weights = None if result.weights is None else result.weights.astype("<f4").tobytes()
    statistics = getattr(result, "non_trainable_weights", None)
    row = {
        "replica_key": spec.replica_key,
        **_spec_columns(spec),
        **identity,
        "dataset": spec.dataset,
        "setting": spec.setting,
        "replica": spec.replica,
        "init_seed": spec.init_seed,
        "data_seed": spec.data_seed,
        "epochs": spec.epochs,
        "learning_rate": spec.learning_rate,
        "status": result.status,
        "error": result.error,
        "test_accuracy": result.test_accuracy,
        "losses": json.dumps(result.losses),
        "weights": weights,
        "non_trainable_weights": None if statistics is None else statistics.astype("<f4").tobytes(),
        **_output_columns(result),
        "weights_hash": result.weights_hash,
        "wall_s": result.wall_s,
        "finished_at": _now(),
    }
    predictions = [
        {"example": i, "label": int(label), "prediction": int(pred)}
        for i, (label, pred) in enumerate(zip(result.labels, result.predictions, strict=True))
    ]
    return Entry("replicas", spec.replica_key, row, {"predictions": predictions}, environment)


def _output_columns(result: Any) -> dict[str, Any]:
    """A multi-label replica's output names and 0/1 matrices as stored (NULL for others)."""
    predictions = getattr(result, "output_predictions", None)
    if predictions is None:
        return {}
    return {
        "output_names": json.dumps(list(result.output_names)),
        "output_predictions": np.asarray(predictions, dtype=np.uint8).tobytes(),
        "output_labels": np.asarray(result.output_labels, dtype=np.uint8).tobytes(),
    }


def insert_row(
    conn: sqlite3.Connection, table: str, row: dict[str, Any], verb: str = "INSERT"
) -> int:
    """Insert `row` (column -> value) into `table` with `verb`; returns the row id."""
    columns = ", ".join(quote(c) for c in row)
    marks = ", ".join("?" for _ in row)
    cursor = conn.execute(
        f"{verb} INTO {quote(table)} ({columns}) VALUES ({marks})", tuple(row.values())
    )
    return int(cursor.lastrowid)


def write_entry(conn: sqlite3.Connection, entry: Entry) -> int:
    """Write `entry` in the open transaction; returns the id of the row its key now has.

    It replaces an earlier row of its key unless that row succeeded and this result did not.
    """
    key_column, child_column = IDENTITY[entry.table]
    table = quote(entry.table)
    conn.execute("INSERT OR IGNORE INTO environments(id, data) VALUES (?, ?)", entry.environment)
    old = conn.execute(
        f"SELECT id, status FROM {table} WHERE {quote(key_column)} = ?", (entry.key,)
    ).fetchone()
    if old is not None and not takes_over(entry.status, old[1]):
        log.warning(
            "kept the successful %s row of %s: the new result (%s) does not replace it",
            entry.table,
            describe(entry.row, entry.key),
            entry.status,
        )
        return int(old[0])
    conn.execute(f"DELETE FROM {table} WHERE {quote(key_column)} = ?", (entry.key,))
    row_id = insert_row(conn, entry.table, entry.row)
    for child, rows in entry.children.items():
        if not rows:
            continue
        columns = ", ".join(quote(c) for c in (child_column, *rows[0]))
        marks = ", ".join("?" for _ in range(len(rows[0]) + 1))
        conn.executemany(
            f"INSERT INTO {quote(child)} ({columns}) VALUES ({marks})",
            [(row_id, *row.values()) for row in rows],
        )
    return row_id
