"""nvprof output: ``--csv --print-gpu-trace``, ``--csv --print-gpu-summary`` and ``-o`` SQLite.

CSV files start with ``==PID==`` lines, then a header and a units row (``ms``, ``us``,
``ns``, ``s`` per column); values are converted exactly with :func:`.units.text_to_ns`.
Rows whose name starts with ``[CUDA`` (memcpy, memset) are not kernels and are dropped;
nvprof's ``" [123]"`` launch-id suffix is removed from kernel names. In gpu-trace files
``start_ns`` is relative to the start of profiling, as nvprof prints it.

The gpu-summary report has no per-launch rows: its reader returns a summary frame
(:data:`~.schema.SUMMARY_COLUMNS`) whose ``total_ns``/``min_ns``/``max_ns`` are exact to
the digits nvprof printed, with ``calls`` from the ``Calls`` column.

The ``-o`` database keeps kernels in ``CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL`` and/or
``CUPTI_ACTIVITY_KIND_KERNEL`` (both are read), names as ids into ``StringTable``
(mangled C++ names, kept as stored: the reader does not demangle), GPU names in
``CUPTI_ACTIVITY_KIND_DEVICE``.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnr_profile.core.errors import TraceError
from nnr_profile.traces.files import (
    column_names,
    open_sqlite_readonly,
    sqlite_failure,
    table_names,
)
from nnr_profile.traces.names import short_from_demangled, short_from_mangled
from nnr_profile.traces.schema import (
    KernelStats,
    aggregate_columns,
    kernel_frame,
    merge_stats,
    new_kernel_columns,
    summary_frame,
)
from nnr_profile.traces.units import NS_PER_UNIT, text_to_ns

if TYPE_CHECKING:
    import pandas as pd

KERNEL_TABLES = ("CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL", "CUPTI_ACTIVITY_KIND_KERNEL")
_LAUNCH_ID = re.compile(r"\s+\[\d+\]$")
_DEVICE = re.compile(r"^(.*\S)\s+\((\d+)\)$")
_UNIT_CELLS = {"", "%", "B", "KB", "MB", "GB", "B/s", "KB/s", "MB/s", "GB/s", *NS_PER_UNIT}


def _no_kernels(path: Path) -> TraceError:
    return TraceError(
        f"{path} has no kernels (only memory copies/sets or nothing was profiled); "
        "profile a run that launches CUDA kernels"
    )


def _csv_rows(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """Header, units row and data rows of an nvprof CSV file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TraceError(f"cannot read {path} ({exc.strerror}); check the file") from None
    if text and not text.endswith("\n"):
        raise TraceError(f"{path} is truncated (its last line is incomplete); copy it again")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("==")]
    try:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), strict=True))
    except csv.Error as exc:
        raise TraceError(f"{path} is not valid CSV ({exc}); the file is corrupt") from None
    if len(rows) < 2:
        raise TraceError(f"{path} has no nvprof data rows; the file is empty or truncated")
    header, units = rows[0], rows[1]
    if not all(cell.strip() in _UNIT_CELLS for cell in units):
        raise TraceError(
            f"{path} has no units row under the nvprof header; rerun nvprof with --csv "
            "(without --print-units no) so times can be converted exactly"
        )
    return header, units, rows[2:]


def is_gpu_summary(header: list[str]) -> bool:
    """True for a ``--print-gpu-summary`` header, False for a ``--print-gpu-trace`` one."""
    return "Calls" in header and "Start" not in header


def _column(header: list[str], name: str, path: Path) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise TraceError(
            f"{path} lacks the nvprof column {name!r}; expected --print-gpu-trace or "
            "--print-gpu-summary CSV output"
        ) from None


def _kernel_name(raw: str) -> str:
    return _LAUNCH_ID.sub("", raw.strip())


def _trace_columns(path: Path) -> dict[str, list[Any]]:
    header, units, rows = _csv_rows(path)
    if is_gpu_summary(header):
        raise TraceError(f"{path} is an nvprof gpu-summary, not a gpu-trace")
    i_start, i_dur = _column(header, "Start", path), _column(header, "Duration", path)
    i_name = _column(header, "Name", path)
    i_dev = header.index("Device") if "Device" in header else None
    columns = new_kernel_columns()
    try:
        for row in rows:
            if len(row) != len(header):
                raise TraceError(f"{path} has a short row; the file is truncated or corrupt")
            name = _kernel_name(row[i_name])
            if name.startswith("[CUDA"):
                continue
            device, gpu = -1, None
            if i_dev is not None and (match := _DEVICE.match(row[i_dev].strip())):
                gpu, device = match.group(1), int(match.group(2))
            start = text_to_ns(row[i_start], units[i_start].strip())
            duration = text_to_ns(row[i_dur], units[i_dur].strip())
            columns["name"].append(name)
            columns["short_name"].append(short_from_demangled(name))
            columns["device"].append(device)
            columns["gpu_name"].append(gpu)
            columns["start_ns"].append(start)
            columns["end_ns"].append(start + duration)
            columns["duration_ns"].append(duration)
    except ValueError as exc:
        raise TraceError(f"{path} has an unreadable time value ({exc}); check the file") from None
    if not columns["name"]:
        raise _no_kernels(path)
    return columns


def _summary_stats(path: Path) -> list[KernelStats]:
    header, units, rows = _csv_rows(path)
    index = {name: _column(header, name, path) for name in ("Time", "Calls", "Min", "Max")}
    i_name = _column(header, "Name", path)
    i_type = header.index("Type") if "Type" in header else None
    stats = []
    try:
        for row in rows:
            if len(row) != len(header):
                raise TraceError(f"{path} has a short row; the file is truncated or corrupt")
            if i_type is not None and row[i_type].strip() != "GPU activities":
                continue
            name = _kernel_name(row[i_name])
            if name.startswith("[CUDA"):
                continue
            ns = {k: text_to_ns(row[i], units[i].strip()) for k, i in index.items() if k != "Calls"}
            calls = int(row[index["Calls"]])
            stats.append(
                KernelStats(
                    name, short_from_demangled(name), calls, ns["Time"], ns["Min"], ns["Max"]
                )
            )
    except ValueError as exc:
        raise TraceError(f"{path} has an unreadable value ({exc}); check the file") from None
    if not stats:
        raise _no_kernels(path)
    return merge_stats(stats)


def summarize_nvprof_csv(path: Path) -> list[KernelStats]:
    """Per-kernel statistics of an nvprof gpu-trace or gpu-summary CSV file."""
    header, _, _ = _csv_rows(path)
    if is_gpu_summary(header):
        return _summary_stats(path)
    return aggregate_columns(_trace_columns(path))


def read_nvprof_csv(path: Path) -> pd.DataFrame:
    """Per-launch frame for gpu-trace CSV; summary frame for gpu-summary CSV."""
    header, _, _ = _csv_rows(path)
    if is_gpu_summary(header):
        return summary_frame(_summary_stats(path))
    return kernel_frame(_trace_columns(path))


def _sqlite_query(conn: sqlite3.Connection, path: Path) -> str:
    tables = table_names(conn)
    present = [t for t in KERNEL_TABLES if t in tables]
    if not present or "StringTable" not in tables:
        raise TraceError(f"{path} is not an nvprof database (no kernel or StringTable tables)")
    selects = [f'SELECT name, deviceId, start, "end" FROM {t}' for t in present]
    return " UNION ALL ".join(selects)


def _device_names(conn: sqlite3.Connection) -> dict[int, str]:
    if "CUPTI_ACTIVITY_KIND_DEVICE" not in table_names(conn):
        return {}
    if "name" not in column_names(conn, "CUPTI_ACTIVITY_KIND_DEVICE"):
        return {}
    rows = conn.execute(
        "SELECT d.id, s.value FROM CUPTI_ACTIVITY_KIND_DEVICE d "
        "JOIN StringTable s ON s._id_ = d.name"
    )
    return {int(device): str(name) for device, name in rows}


def _strings(conn: sqlite3.Connection, ids: set[int]) -> dict[int, str]:
    wanted = sorted(ids)
    found: dict[int, str] = {}
    for offset in range(0, len(wanted), 500):
        chunk = wanted[offset : offset + 500]
        query = f"SELECT _id_, value FROM StringTable WHERE _id_ IN ({','.join('?' * len(chunk))})"
        found.update((int(i), str(v)) for i, v in conn.execute(query, chunk))
    return found


def summarize_nvprof_sqlite(path: Path) -> list[KernelStats]:
    """Per-kernel statistics of an nvprof ``-o`` database, aggregated inside SQLite."""
    conn = open_sqlite_readonly(path)
    try:
        union = _sqlite_query(conn, path)
        rows = conn.execute(
            f'SELECT name, COUNT(*), SUM("end" - start), MIN("end" - start), '
            f'MAX("end" - start) FROM ({union}) GROUP BY name'
        ).fetchall()
        if not rows:
            raise _no_kernels(path)
        names = _strings(conn, {r[0] for r in rows})
    except sqlite3.Error as exc:
        raise sqlite_failure(path, exc) from None
    finally:
        conn.close()
    stats = []
    for name_id, calls, total, low, high in rows:
        name = names.get(name_id, f"<unknown kernel name id {name_id}>")
        stats.append(KernelStats(name, short_from_mangled(name), calls, total, low, high))
    return merge_stats(stats)


def read_nvprof_sqlite(path: Path) -> pd.DataFrame:
    """One row per kernel execution of an nvprof ``-o`` database (mangled names)."""
    conn = open_sqlite_readonly(path)
    try:
        union = _sqlite_query(conn, path)
        rows = conn.execute(f"SELECT * FROM ({union}) ORDER BY start").fetchall()
        if not rows:
            raise _no_kernels(path)
        names = _strings(conn, {r[0] for r in rows})
        gpus = _device_names(conn)
    except sqlite3.Error as exc:
        raise sqlite_failure(path, exc) from None
    finally:
        conn.close()
    columns = new_kernel_columns()
    for name_id, device, start, end in rows:
        name = names.get(name_id, f"<unknown kernel name id {name_id}>")
        columns["name"].append(name)
        columns["short_name"].append(short_from_mangled(name))
        columns["device"].append(device)
        columns["gpu_name"].append(gpus.get(device))
        columns["start_ns"].append(start)
        columns["end_ns"].append(end)
        columns["duration_ns"].append(end - start)
    return kernel_frame(columns)
