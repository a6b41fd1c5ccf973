"""nvprof CSV output: ``--csv --print-gpu-trace`` (per launch) or ``--csv --print-gpu-summary``.

nvprof's own lines start with ``==<pid>==`` (``========`` when it reads a file with ``-i``);
one such as ``==4242== Profiling result:`` opens a section. The kernels are in the
GPU-activities table: the lines before the first ``==`` line when they begin with nvprof's
header, else the section titled ``Profiling result``. Every other section (``Unified Memory
profiling result``, ``API calls``, ``NVTX result``, ...: their own headers, rows with empty or
``-`` fields, lines like ``Total CPU Page faults: 36``) is skipped, and the summary's note
names it. The file is read line by line, never whole.

The table is a header, a units row (``ms``, ``us``, ``ns``, ``s`` per column) and the rows;
values are converted exactly with :func:`.units.text_to_ns`. Rows whose name starts with
``[CUDA`` (memcpy, memset) are not kernels and are dropped, as are summary rows whose
``Type`` is not ``GPU activities`` (API calls); nvprof's ``" [123]"`` launch-id suffix is
removed from kernel names. In gpu-trace files ``start_ns`` is relative to the start of
profiling, as nvprof prints it. A negative or non-numeric time is refused with the kernel named.

The gpu-summary report has no per-launch rows: its reader returns a summary frame
(:data:`~.schema.SUMMARY_COLUMNS`) whose ``total_ns``/``min_ns``/``max_ns`` are exact to
the digits nvprof printed, with ``calls`` from the ``Calls`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.base import Probe, TraceReader, register_reader
from nnr_profile.profiler.traces.files import csv_lines, csv_rows, open_csv_text
from nnr_profile.profiler.traces.names import short_from_demangled
from nnr_profile.profiler.traces.schema import (
    KernelStats,
    TraceSummary,
    add_launch,
    aggregate_columns,
    kernel_frame,
    merge_stats,
    new_kernel_columns,
    summary_frame,
)
from nnr_profile.profiler.traces.units import NS_PER_UNIT, duration_ns, text_to_ns

if TYPE_CHECKING:
    import pandas as pd

WHAT = "an nvprof CSV file (nvprof --csv --print-gpu-trace or --print-gpu-summary)"
GPU_ACTIVITIES = "GPU activities"
MAIN_TITLE = "profiling result"
_TITLE = re.compile(r"^=+\d*=+ ?(.*)$", re.DOTALL)
_LAUNCH_ID = re.compile(r"\[\d+\]")
_DEVICE = re.compile(r"^(.*\S)\s+\((\d+)\)$")
_UNIT_CELLS = {"", "%", "B", "KB", "MB", "GB", "B/s", "KB/s", "MB/s", "GB/s", *NS_PER_UNIT}


def _no_kernels(path: Path) -> TraceError:
    return TraceError(
        f"{path} has no kernels (only memory copies/sets or nothing was profiled); "
        "profile a run that launches CUDA kernels"
    )


def _is_header(line: str) -> bool:
    return "Name" in (cell.strip().strip('"') for cell in line.split(","))


def gpu_activity_lines(lines: Iterable[str], skipped: list[str]) -> Iterator[str]:
    """The lines of the GPU-activities table; titles of the other sections with data go to
    ``skipped`` as they are passed."""
    title: str | None = None
    state = "looking"
    for line in lines:
        match = _TITLE.match(line)
        if match:
            text = match.group(1).rstrip()
            if not text.startswith(" "):  # indented titles nest (NVTX ranges)
                title = text.rstrip(":").strip()
                state = "done" if state == "reading" else state
            continue
        if not line.strip():
            continue
        main = title is None or title.lower().startswith(MAIN_TITLE)
        if state == "looking" and main and _is_header(line):
            state = "reading"
        if state == "reading":
            yield line
        elif title is not None and "," in line and title not in skipped:
            skipped.append(title)


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
    """The name without nvprof's launch-id suffix (whitespace, then ``[<digits>]``), found
    by partition, not by a backtracking pattern."""
    name = raw.strip()
    head, bracket, tail = name.rpartition("[")
    if bracket and _LAUNCH_ID.fullmatch(bracket + tail) and head[-1:].isspace():
        return head.rstrip()
    return name


def _check_length(path: Path, row: list[str], header: list[str]) -> None:
    if len(row) != len(header):
        raise TraceError(
            f"{path} has a row with {len(row)} of {len(header)} fields in its GPU-activities "
            "table; the file is truncated or corrupt"
        )


def _trace_columns(
    path: Path, header: list[str], units: list[str], rows: Iterator[list[str]]
) -> dict[str, list[Any]]:
    i_start, i_dur = _column(header, "Start", path), _column(header, "Duration", path)
    i_name = _column(header, "Name", path)
    i_dev = header.index("Device") if "Device" in header else None
    unit_start, unit_dur = units[i_start].strip(), units[i_dur].strip()
    columns = new_kernel_columns()
    for row in rows:
        _check_length(path, row, header)
        name = _kernel_name(row[i_name])
        if name.startswith("[CUDA"):
            continue
        device, gpu = -1, None
        if i_dev is not None and (match := _DEVICE.match(row[i_dev].strip())):
            gpu, device = match.group(1), int(match.group(2))
        try:
            start = text_to_ns(row[i_start], unit_start)
        except ValueError:
            raise TraceError(
                f"{path}: kernel {name!r} has Start {row[i_start]!r}, not a time; the file is "
                "corrupt"
            ) from None
        duration = duration_ns(path, name, "Duration", row[i_dur], unit_dur)
        add_launch(columns, name, short_from_demangled(name), device, gpu, start, duration)
    if not columns["name"]:
        raise _no_kernels(path)
    return columns


def _summary_stats(
    path: Path, header: list[str], units: list[str], rows: Iterator[list[str]]
) -> tuple[list[KernelStats], int]:
    """Per-kernel records and the number of rows of other types (API calls) passed over."""
    index = {name: _column(header, name, path) for name in ("Time", "Calls", "Min", "Max")}
    i_name = _column(header, "Name", path)
    i_type = header.index("Type") if "Type" in header else None
    stats, other_rows, row_type = [], 0, GPU_ACTIVITIES
    for row in rows:
        _check_length(path, row, header)
        if i_type is not None:
            row_type = row[i_type].strip() or row_type  # a blank Type continues the last one
            if row_type != GPU_ACTIVITIES:
                other_rows += 1
                continue
        name = _kernel_name(row[i_name])
        if name.startswith("[CUDA"):
            continue
        ns = {
            key: duration_ns(path, name, key, row[i], units[i].strip())
            for key, i in index.items()
            if key != "Calls"
        }
        calls_text = row[index["Calls"]].strip()
        if not calls_text.isdigit():
            raise TraceError(
                f"{path}: kernel {name!r} has Calls {calls_text!r}, not a count; the file is "
                "corrupt"
            )
        stats.append(
            KernelStats(
                name, short_from_demangled(name), int(calls_text), ns["Time"], ns["Min"], ns["Max"]
            )
        )
    if not stats:
        raise _no_kernels(path)
    return merge_stats(stats), other_rows


def _read(path: Path) -> tuple[dict[str, list[Any]] | None, list[KernelStats], tuple[str, ...]]:
    """(per-launch columns or None for a summary, summary records, notes), in one pass."""
    skipped: list[str] = []
    columns, stats, other_rows = None, [], 0
    with open_csv_text(path, WHAT) as handle:
        rows = csv_rows(path, gpu_activity_lines(csv_lines(path, handle), skipped))
        header = [cell.strip() for cell in next(rows, [])]
        if not header:
            raise TraceError(
                f"{path} has no nvprof GPU-activities table (no header with a Name column); "
                "the file is empty, truncated or not nvprof --csv output"
            )
        units = next(rows, [])
        if not units or not all(cell.strip() in _UNIT_CELLS for cell in units):
            raise TraceError(
                f"{path} has no units row under the nvprof header; rerun nvprof with --csv "
                "(without --print-units no) so times can be converted exactly"
            )
        if is_gpu_summary(header):
            stats, other_rows = _summary_stats(path, header, units, rows)
        else:
            columns = _trace_columns(path, header, units, rows)
    notes = []
    if skipped:
        notes.append(f"skipped nvprof sections {', '.join(skipped)}: only GPU activities are read")
    if other_rows:
        notes.append(f"skipped {other_rows} row(s) of the table that are not {GPU_ACTIVITIES}")
    return columns, stats, tuple(notes)


def summarize_nvprof_csv(path: Path) -> TraceSummary:
    """Per-kernel statistics of an nvprof gpu-trace or gpu-summary CSV file."""
    columns, stats, notes = _read(path)
    return TraceSummary(aggregate_columns(columns) if columns is not None else stats, notes)


def read_nvprof_csv(path: Path) -> pd.DataFrame:
    """Per-launch frame for gpu-trace CSV; summary frame for gpu-summary CSV."""
    columns, stats, notes = _read(path)
    if columns is None:
        return summary_frame(stats, notes)
    return kernel_frame(columns, notes)


def sniff_nvprof_csv(probe: Probe) -> bool:
    """Text with nvprof's ``==PID==`` lines, or a gpu-trace/gpu-summary header first."""
    if probe.text is None or probe.is_gzip:
        return False
    lines = [ln for ln in probe.text.splitlines() if ln.strip()]
    data = [ln for ln in lines if not ln.startswith("==")]
    if not data:
        return False
    return len(data) < len(lines) or '"Start","Duration"' in data[0] or '"Calls"' in data[0]


READER = register_reader(
    TraceReader(
        "nvprof-csv",
        "nvprof --csv --print-gpu-trace (per launch) or --print-gpu-summary (per kernel)",
        read_nvprof_csv,
        summarize_nvprof_csv,
        sniff_nvprof_csv,
        priority=50,
    )
)
