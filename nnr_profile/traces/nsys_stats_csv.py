"""``nsys stats --format csv`` kernel summaries (``cuda_gpu_kern_sum``; ``gpukernsum``
before nsys 2023; ``cuda_gpu_kern_gb_sum`` rows are merged per name).

These files hold one row per kernel, not per launch, so the reader returns a summary
frame (:data:`~.schema.SUMMARY_COLUMNS`): ``calls`` from ``Instances``, ``total_ns``,
``min_ns``, ``max_ns`` from ``Total Time``, ``Min``, ``Max`` converted exactly from the
unit in the header (``(ns)``; the unit-less ``Minimum``/``Maximum`` of old versions are
ns). Other reports (memory, API, NVTX, ...) are refused with a message naming them.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from nnr_profile.core.errors import TraceError
from nnr_profile.traces.names import short_from_demangled
from nnr_profile.traces.schema import KernelStats, merge_stats, summary_frame
from nnr_profile.traces.units import text_to_ns

if TYPE_CHECKING:
    import pandas as pd

_UNIT = re.compile(r"\((s|ms|us|ns)\)\s*$")
_KNOWN_HEADER_WORDS = ("Total Time", "Instances", "Num Calls", "Operation", "Total (MB)", "Range")


def find_header(lines: list[str]) -> int:
    """Index of the CSV header line of an nsys stats report, or -1."""
    for index, line in enumerate(lines[:50]):
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


def summarize_nsys_stats_csv(path: Path) -> list[KernelStats]:
    """Per-kernel statistics from an nsys stats kernel-summary CSV file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TraceError(f"cannot read {path} ({exc.strerror}); check the file") from None
    if text and not text.endswith("\n"):
        raise TraceError(f"{path} is truncated (its last line is incomplete); copy it again")
    lines = text.splitlines()
    start = find_header(lines)
    if start < 0:
        raise TraceError(f"{path} is not an nsys stats CSV report (no known header)")
    body = "\n".join(ln for ln in lines[start:] if ln.strip())
    try:
        rows = list(csv.reader(io.StringIO(body), strict=True))
    except csv.Error as exc:
        raise TraceError(f"{path} is not valid CSV ({exc}); the file is corrupt") from None
    header = [c.strip() for c in rows[0]]
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
    try:
        for row in rows[1:]:
            if len(row) != len(header):
                raise TraceError(f"{path} has a short row; the file is truncated or corrupt")
            name = row[i_name].strip()
            stats.append(
                KernelStats(
                    name=name,
                    short_name=short_from_demangled(name),
                    calls=int(row[i_calls].replace(",", "")),
                    total_ns=text_to_ns(row[i_total], unit(i_total)),
                    min_ns=text_to_ns(row[i_min], unit(i_min)),
                    max_ns=text_to_ns(row[i_max], unit(i_max)),
                )
            )
    except ValueError as exc:
        raise TraceError(f"{path} has an unreadable value ({exc}); check the file") from None
    if not stats:
        raise TraceError(f"{path} has no kernels (the kernel summary has no rows)")
    return merge_stats(stats)


def read_nsys_stats_csv(path: Path) -> pd.DataFrame:
    """Summary frame (:data:`~.schema.SUMMARY_COLUMNS`) of an nsys stats kernel summary."""
    return summary_frame(summarize_nsys_stats_csv(path))
