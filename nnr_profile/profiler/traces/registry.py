"""The format-independent entry points: find a file's reader and read it.

The readers come from :data:`~nnr_profile.profiler.traces.base.READERS`, which imports every
module of :mod:`nnr_profile.profiler.traces.formats` the first time it is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.base import READERS, TraceReader
from nnr_profile.profiler.traces.detect import check_format, detect_format
from nnr_profile.profiler.traces.files import check_file
from nnr_profile.profiler.traces.schema import KernelStats, TraceSummary, summary_frame

if TYPE_CHECKING:
    import pandas as pd


def get_reader(path: str | os.PathLike[str], fmt: str | None = None) -> tuple[Path, TraceReader]:
    """The checked path and its reader: detected from content, or ``fmt`` when given and the
    content is not clearly another format."""
    p = check_file(path)
    if fmt is None:
        return p, READERS[detect_format(p)]
    if fmt not in READERS:
        known = ", ".join(sorted(READERS))
        raise TraceError(f"unknown trace format {fmt!r}; choose one of: {known}")
    check_format(p, fmt)
    return p, READERS[fmt]


def read_kernels(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Kernels of one trace file as a DataFrame; the format is detected unless ``fmt`` is given.

    Per-launch formats give :data:`~.schema.KERNEL_COLUMNS` (one row per execution);
    summary-only formats (nsys stats CSV, nvprof gpu-summary CSV) give
    :data:`~.schema.SUMMARY_COLUMNS`. ``df.attrs`` holds ``source``, ``format``, ``kind``
    (``"launches"`` or ``"summary"``) and ``notes`` (how the reader read the file).
    """
    p, reader = get_reader(path, fmt)
    frame = reader.read(p)
    frame.attrs.setdefault("notes", [])
    frame.attrs.update(
        source=str(p),
        format=reader.name,
        kind="launches" if "duration_ns" in frame.columns else "summary",
    )
    return frame


def trace_summary(path: str | os.PathLike[str], fmt: str | None = None) -> TraceSummary:
    """Per-kernel statistics and the reader's notes, without pandas (SQLite aggregates in SQL)."""
    p, reader = get_reader(path, fmt)
    return reader.summarize(p)


def kernel_stats(path: str | os.PathLike[str], fmt: str | None = None) -> list[KernelStats]:
    """Per-kernel statistics of one trace file without pandas (see :func:`trace_summary`)."""
    return trace_summary(path, fmt).stats


def summarize_trace(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Per-kernel summary frame (:data:`~.schema.SUMMARY_COLUMNS`) of one trace file."""
    summary = trace_summary(path, fmt)
    return summary_frame(summary.stats, summary.notes)
