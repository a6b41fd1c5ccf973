"""``nsys stats --format csv`` kernel summaries (``cuda_gpu_kern_sum``; ``gpukernsum``
before nsys 2023; ``cuda_gpu_kern_gb_sum`` rows are merged per name).

These files hold one row per kernel, not per launch, so the reader returns a summary
frame (:data:`~.schema.SUMMARY_COLUMNS`): ``calls`` from ``Instances``, ``total_ns``,
``min_ns``, ``max_ns`` from ``Total Time``, ``Min``, ``Max`` converted exactly from the
unit in the header (``(ns)``; the unit-less ``Minimum``/``Maximum`` of old versions are
ns). Other reports (memory, API, NVTX, ...) are refused with a message naming them.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.base import Probe, TraceReader, register_reader
from nnr_profile.profiler.traces.files import csv_lines, csv_rows, open_csv_text
from nnr_profile.profiler.traces.names import short_from_demangled
from nnr_profile.profiler.traces.schema import KernelStats, TraceSummary, merge_stats, summary_frame
from nnr_profile.profiler.traces.units import duration_ns

if TYPE_CHECKING:
    import pandas as pd

_UNIT = re.compile(r"\((s|ms|us|ns)\)\s*$")
_KNOWN_HEADER_WORDS = ("Total Time", "Instances", "Num Calls", "Operation", "Total (MB)", "Range")


HEADER_LINES = 50
"""The header must be among the first this many lines."""


def find_header(lines: list[str]) -> int:
    """Index of the CSV header line of an nsys stats report, or -1."""
    for index, line in enumerate(lines[:HEADER_LINES]):
        if "," in line and any(word in line for word in _KNOWN_HEADER_WORDS):
            return index
    return -1


def describe_report(header: list[str]) -> str:
    """Which nsys stats report a header belongs to, in words."""
    cols = set(header)
    if "Operation" in cols and any(c.startswith("Total (") for c in cols):
        return "GPU memory-size summary (cuda_gpu_mem_size_sum, gpumemsizesum)"
    if "Operation" in cols:
        return "GPU memory-time summary (cuda_gpu_mem_time_sum, gpumemtimesum)"
    if "Num Calls" in cols:
        return "API or OS-runtime summary (cuda_api_sum, osrt_sum)"
    if "Range" in cols:
        return "NVTX range summary (nvtx_sum)"
    return f"report with columns {', '.join(header)}"


def _find(header: list[str], *prefixes: str) -> int:
    for prefix in prefixes:
        for index, column in enumerate(header):
            if column == prefix or column.startswith(prefix + " ("):
                return index
    return -1


WHAT = "an nsys stats CSV report (nsys stats --report cuda_gpu_kern_sum --format csv)"


def summarize_nsys_stats_csv(path: Path) -> TraceSummary:
    """Per-kernel statistics from an nsys stats kernel-summary CSV file."""
    with open_csv_text(path, WHAT) as handle:
        text = csv_lines(path, handle)
        lines = list(itertools.islice(text, HEADER_LINES))
        start = find_header(lines)
        if start < 0:
            raise TraceError(f"{path} is not an nsys stats CSV report (no known header)")
        rows = csv_rows(path, itertools.chain(lines[start:], text))
        header = [c.strip() for c in next(rows)]
        i_total, i_calls = _find(header, "Total Time"), _find(header, "Instances")
        i_min, i_max = _find(header, "Min", "Minimum"), _find(header, "Max", "Maximum")
        i_name = _find(header, "Name")
        if min(i_total, i_calls, i_min, i_max, i_name) < 0 or "Operation" in header:
            raise TraceError(
                f"{path} is an nsys stats {describe_report(header)}, not a kernel summary; run "
                "'nsys stats --report cuda_gpu_kern_sum --format csv' (gpukernsum before 2023)"
            )

        def unit(i: int) -> str:
            match = _UNIT.search(header[i])
            return match.group(1) if match else "ns"

        stats = []
        for row in rows:
            if len(row) != len(header):
                raise TraceError(f"{path} has a short row; the file is truncated or corrupt")
            name = row[i_name].strip()
            calls = row[i_calls].replace(",", "").strip()
            if not calls.isdigit():
                raise TraceError(
                    f"{path}: kernel {name!r} has Instances {calls!r}, not a count; the file "
                    "is corrupt"
                )
            total, low, high = (
                duration_ns(path, name, header[i], row[i], unit(i)) for i in (i_total, i_min, i_max)
            )
            stats.append(
                KernelStats(name, short_from_demangled(name), int(calls), total, low, high)
            )
    if not stats:
        raise TraceError(f"{path} has no kernels (the kernel summary has no rows)")
    return TraceSummary(merge_stats(stats))


def read_nsys_stats_csv(path: Path) -> pd.DataFrame:
    """Summary frame (:data:`~.schema.SUMMARY_COLUMNS`) of an nsys stats kernel summary."""
    summary = summarize_nsys_stats_csv(path)
    return summary_frame(summary.stats, summary.notes)


def sniff_nsys_stats_csv(probe: Probe) -> bool:
    """Plain text with an nsys stats header among its first lines."""
    if probe.text is None or probe.is_gzip:
        return False
    return find_header(probe.text.splitlines()) >= 0


READER = register_reader(
    TraceReader(
        "nsys-stats-csv",
        "nsys stats --report cuda_gpu_kern_sum (gpukernsum) --format csv",
        read_nsys_stats_csv,
        summarize_nsys_stats_csv,
        sniff_nsys_stats_csv,
        priority=60,
        per_launch=False,
    )
)
