"""Nsight Systems SQLite exports (``nsys export --type sqlite``).

Kernels are rows of ``CUPTI_ACTIVITY_KIND_KERNEL``: ``start``/``end`` are integer
nanoseconds, ``demangledName``/``shortName`` are ids into ``StringIds(id, value)``
(``mangledName`` is absent in old schemas and not used). GPU names come from
``TARGET_INFO_GPU`` (``id`` or, in old schemas, ``deviceId``) or else from the old
``TARGET_INFO_CUDA_GPU``. The export-metadata table (``META_DATA_EXPORT``,
``EXPORT_META_DATA`` or none) is not needed. Files are opened read-only.

A kernel whose name id is not in ``StringIds`` keeps its row, named
``<kernel name id N missing from StringIds>`` (its short name too, unless the short-name id
is found), and the summary's note counts such ids. A name or GPU name over
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
from nnr_profile.profiler.traces.names import short_from_demangled
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

KERNEL_TABLE = "CUPTI_ACTIVITY_KIND_KERNEL"


def _no_kernels(path: Path, detail: str) -> TraceError:
    return TraceError(
        f"{path} has no kernels ({detail}): the capture recorded no CUDA kernels; profile "
        "with 'nsys profile --trace=cuda' and make sure kernels run inside the capture range"
    )


def _name_columns(conn: sqlite3.Connection, path: Path) -> tuple[str, str]:
    tables = table_names(conn)
    if KERNEL_TABLE not in tables:
        raise _no_kernels(path, f"no {KERNEL_TABLE} table")
    if "StringIds" not in tables:
        raise TraceError(f"{path} has kernels but no StringIds table; export it again")
    columns = set(column_names(conn, KERNEL_TABLE))
    full = next((c for c in ("demangledName", "mangledName", "shortName") if c in columns), None)
    if full is None:
        raise TraceError(f"{path}: {KERNEL_TABLE} has no kernel name column; export it again")
    short = "shortName" if "shortName" in columns else full
    return full, short


def gpu_names(conn: sqlite3.Connection, path: Path) -> dict[int, str]:
    """Map device id -> GPU name from TARGET_INFO_GPU, else TARGET_INFO_CUDA_GPU."""
    tables = table_names(conn)
    found: dict[int, set[str]] = {}
    for table in ("TARGET_INFO_GPU", "TARGET_INFO_CUDA_GPU"):
        if table not in tables:
            continue
        columns = column_names(conn, table)
        id_column = "id" if "id" in columns else "deviceId"
        if id_column not in columns or "name" not in columns:
            continue
        query = f'SELECT "{id_column}", {capped_text("name")} FROM "{table}"'
        for device, name in conn.execute(query):
            check_size(path, f"a GPU name in {table}", name)
            if device is not None and name:
                found.setdefault(int(device), set()).add(str(name))
        if found:
            break
    return {device: " | ".join(sorted(names)) for device, names in found.items()}


def _strings(conn: sqlite3.Connection, path: Path, ids: set[int]) -> dict[int, str]:
    return strings_by_id(conn, path, "StringIds", "id", ids)


def _missing(name_id: object) -> str:
    return f"<kernel name id {name_id} missing from StringIds>"


def _names(names: dict[int, str], name_id: int, short_id: int) -> tuple[str, str]:
    """(name, short name) of one kernel; a missing id is named as missing, never shortened."""
    name = names.get(name_id)
    if name is None:
        return _missing(name_id), names.get(short_id) or _missing(name_id)
    return name, names.get(short_id) or short_from_demangled(name)


def _missing_note(names: dict[int, str], ids: set[int]) -> tuple[str, ...]:
    missing = sorted(i for i in ids if i is not None and i not in names)
    if not missing:
        return ()
    shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
    return (
        f"{len(missing)} kernel name id(s) missing from StringIds ({shown}): those kernels "
        "are named by their id; the export is incomplete, export it again",
    )


def summarize_nsys_sqlite(path: Path) -> TraceSummary:
    """Per-kernel statistics, aggregated inside SQLite on the integer name id."""
    with reading_sqlite(path) as conn:
        full, short = _name_columns(conn, path)
        check_kernel_times(conn, path, KERNEL_TABLE, full, lambda ids: _strings(conn, path, ids))
        rows = conn.execute(
            f'SELECT "{full}", MIN("{short}"), COUNT(*), SUM("end" - start), '
            f'MIN("end" - start), MAX("end" - start) FROM {KERNEL_TABLE} GROUP BY "{full}"'
        ).fetchall()
        if not rows:
            raise _no_kernels(path, f"{KERNEL_TABLE} is empty")
        names = _strings(conn, path, {r[0] for r in rows} | {r[1] for r in rows})
    stats = []
    for name_id, short_id, calls, total, low, high in rows:
        name, short_name = _names(names, name_id, short_id)
        stats.append(KernelStats(name, short_name, calls, total, low, high))
    return TraceSummary(merge_stats(stats), _missing_note(names, {r[0] for r in rows}))


def read_nsys_sqlite(path: Path) -> pd.DataFrame:
    """One row per kernel execution, columns :data:`~.schema.KERNEL_COLUMNS`."""
    with reading_sqlite(path) as conn:
        full, short = _name_columns(conn, path)
        check_kernel_times(conn, path, KERNEL_TABLE, full, lambda ids: _strings(conn, path, ids))
        rows = conn.execute(
            f'SELECT "{full}", "{short}", deviceId, start, "end" FROM {KERNEL_TABLE} ORDER BY start'
        ).fetchall()
        if not rows:
            raise _no_kernels(path, f"{KERNEL_TABLE} is empty")
        names = _strings(conn, path, {r[0] for r in rows} | {r[1] for r in rows})
        gpus = gpu_names(conn, path)
    columns = new_kernel_columns()
    for name_id, short_id, device, start, end in rows:
        name, short_name = _names(names, name_id, short_id)
        add_launch(
            columns,
            name,
            short_name,
            -1 if device is None else device,
            gpus.get(device),
            start,
            end - start,
        )
    return kernel_frame(columns, _missing_note(names, {r[0] for r in rows}))


def sniff_nsys_sqlite(probe: Probe) -> bool:
    """A SQLite file with nsys's ``StringIds`` or ``TARGET_INFO_*`` tables."""
    tables = probe.tables
    return "StringIds" in tables or any(t.startswith("TARGET_INFO_") for t in tables)


READER = register_reader(
    TraceReader(
        "nsys-sqlite",
        "Nsight Systems SQLite export (nsys export --type sqlite)",
        read_nsys_sqlite,
        summarize_nsys_sqlite,
        sniff_nsys_sqlite,
        priority=20,
    )
)
