"""The name -> reader registry and the format-independent entry points."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnr_profile.core.errors import TraceError
from nnr_profile.traces import kineto, nsys_sqlite, nsys_stats_csv, nvprof, tf_xplane
from nnr_profile.traces.detect import detect_format
from nnr_profile.traces.files import check_file
from nnr_profile.traces.schema import KernelStats, summary_frame

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TraceReader:
    """A trace format: how to read its kernels and how to summarise them without pandas.

    ``per_launch`` is False for formats that only hold per-kernel totals; their ``read``
    returns a summary frame (:data:`~.schema.SUMMARY_COLUMNS`).
    """

    name: str
    description: str
    read: Callable[[Path], pd.DataFrame]
    summarize: Callable[[Path], list[KernelStats]]
    per_launch: bool = True


READERS: dict[str, TraceReader] = {}


def register_reader(reader: TraceReader) -> TraceReader:
    """Add a reader under ``reader.name`` (replacing one of the same name) and return it."""
    READERS[reader.name] = reader
    return reader


for _reader in (
    TraceReader(
        "nsys-sqlite",
        "Nsight Systems SQLite export (nsys export --type sqlite)",
        nsys_sqlite.read_nsys_sqlite,
        nsys_sqlite.summarize_nsys_sqlite,
    ),
    TraceReader(
        "nvprof-sqlite",
        "nvprof -o database",
        nvprof.read_nvprof_sqlite,
        nvprof.summarize_nvprof_sqlite,
    ),
    TraceReader(
        "nvprof-csv",
        "nvprof --csv --print-gpu-trace (per launch) or --print-gpu-summary (per kernel)",
        nvprof.read_nvprof_csv,
        nvprof.summarize_nvprof_csv,
    ),
    TraceReader(
        "nsys-stats-csv",
        "nsys stats --report cuda_gpu_kern_sum (gpukernsum) --format csv",
        nsys_stats_csv.read_nsys_stats_csv,
        nsys_stats_csv.summarize_nsys_stats_csv,
        per_launch=False,
    ),
    TraceReader(
        "kineto",
        "PyTorch profiler (Kineto) Chrome trace, .json or .json.gz",
        kineto.read_kineto,
        kineto.summarize_kineto,
    ),
    TraceReader(
        "tf-xplane",
        "TensorFlow profiler .xplane.pb (GPU kernels; on the CPU the TF op table)",
        tf_xplane.read_xplane,
        tf_xplane.summarize_xplane,
    ),
):
    register_reader(_reader)


def get_reader(path: str | os.PathLike[str], fmt: str | None = None) -> tuple[Path, TraceReader]:
    """The checked path and the reader for it: ``fmt`` if given, else detected from content."""
    p = check_file(path)
    name = fmt or detect_format(p)
    reader = READERS.get(name)
    if reader is None:
        known = ", ".join(sorted(READERS))
        raise TraceError(f"unknown trace format {name!r}; choose one of: {known}")
    return p, reader


def read_kernels(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Kernels of one trace file as a DataFrame; the format is detected unless ``fmt`` is given.

    Per-launch formats give :data:`~.schema.KERNEL_COLUMNS` (one row per execution);
    summary-only formats (nsys stats CSV, nvprof gpu-summary CSV) give
    :data:`~.schema.SUMMARY_COLUMNS`. ``df.attrs`` holds ``source``, ``format`` and
    ``kind`` (``"launches"`` or ``"summary"``).
    """
    p, reader = get_reader(path, fmt)
    frame = reader.read(p)
    frame.attrs.update(
        source=str(p),
        format=reader.name,
        kind="launches" if "duration_ns" in frame.columns else "summary",
    )
    return frame


def kernel_stats(path: str | os.PathLike[str], fmt: str | None = None) -> list[KernelStats]:
    """Per-kernel statistics of one trace file without pandas (SQLite formats aggregate in SQL)."""
    p, reader = get_reader(path, fmt)
    return reader.summarize(p)


def summarize_trace(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Per-kernel summary frame (:data:`~.schema.SUMMARY_COLUMNS`) of one trace file."""
    return summary_frame(kernel_stats(path, fmt))
