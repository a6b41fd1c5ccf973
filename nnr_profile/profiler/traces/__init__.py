"""Trace readers: GPU profiler output -> one tidy kernel DataFrame.

Formats (registry names): ``nsys-sqlite``, ``nvprof-sqlite``, ``nvprof-csv``,
``nsys-stats-csv``, ``kineto``, ``tf-xplane``: one module each in :mod:`.formats`, which
registers its reader and carries its own ``sniff``. pandas is imported only by functions
returning frames.

    >>> from nnr_profile.profiler.traces import read_kernels, summarize_kernels
    >>> summary = summarize_kernels(read_kernels("run.sqlite"))  # doctest: +SKIP
"""

from nnr_profile.profiler.traces.base import READERS, Probe, TraceReader, register_reader
from nnr_profile.profiler.traces.detect import detect_format
from nnr_profile.profiler.traces.registry import (
    get_reader,
    kernel_stats,
    read_kernels,
    summarize_trace,
    trace_summary,
)
from nnr_profile.profiler.traces.schema import (
    DIFF_COLUMNS,
    KERNEL_COLUMNS,
    SUMMARY_COLUMNS,
    KernelStats,
    TraceSummary,
)
from nnr_profile.profiler.traces.summary import diff_kernels, diff_rows, summarize_kernels

__all__ = [
    "DIFF_COLUMNS",
    "KERNEL_COLUMNS",
    "READERS",
    "SUMMARY_COLUMNS",
    "KernelStats",
    "Probe",
    "TraceReader",
    "TraceSummary",
    "detect_format",
    "diff_kernels",
    "diff_rows",
    "get_reader",
    "kernel_stats",
    "read_kernels",
    "register_reader",
    "summarize_kernels",
    "summarize_trace",
    "trace_summary",
]
