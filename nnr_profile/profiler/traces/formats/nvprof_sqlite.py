"""nvprof ``-o`` databases (SQLite).

Kernels are in ``CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL`` and/or ``CUPTI_ACTIVITY_KIND_KERNEL``
(both are read), ``start``/``end`` integer nanoseconds, names as ids into ``StringTable``
(mangled C++ names, kept as stored: the reader does not demangle), GPU names in
``CUPTI_ACTIVITY_KIND_DEVICE``. Files are opened read-only. A name over
:data:`~.limits.MAX_FIELD_BYTES` bytes is refused, never read whole into Python.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.base import Probe, TraceReader, register_reader
from nnr_profile.profiler.traces.files import (
    capped_text,
    check_kernel_times,
    check_size,
    column_names,
    reading_sqlite,
    strings_by_id,
    table_names,
)
from nnr_profile.profiler.traces.names import short_from_mangled
from nnr_profile.profiler.traces.schema import (
    KernelStats,
    TraceSummary,
    add_launch,
    kernel_frame,
    merge_stats,
    new_kernel_columns,
)

if TYPE_CHECKING:
    import pandas as pd

KERNEL_TABLES = ("CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL", "CUPTI_ACTIVITY_KIND_KERNEL")


def _no_kernels(path: Path) -> TraceError:
    return TraceError(
        f"{path} has no kernels (only memory copies/sets or nothing was profiled); "
        "profile a run that launches CUDA kernels"
    )


def _strings(conn: sqlite3.Connection, path: Path, ids: set[int]) -> dict[int, str]:
    return strings_by_id(conn, path, "StringTable", "_id_", ids)


def _kernel_union(conn: sqlite3.Connection, path: Path) -> str:
    """One SELECT over the kernel tables present, after checking their times."""
    tables = table_names(conn)
    present = [t for t in KERNEL_TABLES if t in tables]
    if not present or "StringTable" not in tables:
        raise TraceError(f"{path} is not an nvprof database (no kernel or StringTable tables)")
    for table in present:
        check_kernel_times(conn, path, table, "name", lambda ids: _strings(conn, path, ids))
    return " UNION ALL ".join(f'SELECT name, deviceId, start, "end" FROM {t}' for t in present)


def _name(names: dict[int, str], name_id: int) -> tuple[str, str]:
    """(name, short name) of one kernel; a missing id is named as missing, never shortened."""
    name = names.get(name_id)
    if name is None:
        missing = f"<kernel name id {name_id} missing from StringTable>"
        return missing, missing
    return name, short_from_mangled(name)


def _device_names(conn: sqlite3.Connection, path: Path) -> dict[int, str]:
    if "CUPTI_ACTIVITY_KIND_DEVICE" not in table_names(conn):
        return {}
    if "name" not in column_names(conn, "CUPTI_ACTIVITY_KIND_DEVICE"):
        return {}
    rows = conn.execute(
        f"SELECT d.id, {capped_text('s.value')} FROM CUPTI_ACTIVITY_KIND_DEVICE d "
        "JOIN StringTable s ON s._id_ = d.name"
    )
    found: dict[int, str] = {}
    for device, name in rows:
        check_size(path, "a GPU name in StringTable", name)
        found[int(device)] = str(name)
    return found


def summarize_nvprof_sqlite(path: Path) -> TraceSummary:
    """Per-kernel statistics of an nvprof ``-o`` database, aggregated inside SQLite."""
    with reading_sqlite(path) as conn:
        union = _kernel_union(conn, path)
        rows = conn.execute(
            f'SELECT name, COUNT(*), SUM("end" - start), MIN("end" - start), '
            f'MAX("end" - start) FROM ({union}) GROUP BY name'
        ).fetchall()
        if not rows:
            raise _no_kernels(path)
        names = _strings(conn, path, {r[0] for r in rows})
    stats = []
    for name_id, calls, total, low, high in rows:
        stats.append(KernelStats(*_name(names, name_id), calls, total, low, high))
    return TraceSummary(merge_stats(stats))


def read_nvprof_sqlite(path: Path) -> pd.DataFrame:
    """One row per kernel execution of an nvprof ``-o`` database (mangled names)."""
    with reading_sqlite(path) as conn:
        union = _kernel_union(conn, path)
        rows = conn.execute(f"SELECT * FROM ({union}) ORDER BY start").fetchall()
        if not rows:
            raise _no_kernels(path)
        names = _strings(conn, path, {r[0] for r in rows})
        gpus = _device_names(conn, path)
    columns = new_kernel_columns()
    for name_id, device, start, end in rows:
        add_launch(columns, *_name(names, name_id), device, gpus.get(device), start, end - start)
    return kernel_frame(columns)


def sniff_nvprof_sqlite(probe: Probe) -> bool:
    """A SQLite file with nvprof's ``StringTable`` or concurrent-kernel table."""
    return bool(probe.tables & {"StringTable", "CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL"})


READER = register_reader(
    TraceReader(
        "nvprof-sqlite",
        "nvprof -o database",
        read_nvprof_sqlite,
        summarize_nvprof_sqlite,
        sniff_nvprof_sqlite,
        priority=10,
    )
)
