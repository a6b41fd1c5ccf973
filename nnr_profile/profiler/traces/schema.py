"""Column names, the per-kernel statistics record, and the pandas frames built from them.

Everything here except the ``*_frame`` builders is pure Python, so the command line can
summarise a trace without importing pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

KERNEL_COLUMNS: tuple[str, ...] = (
    "name",
    "short_name",
    "device",
    "gpu_name",
    "start_ns",
    "end_ns",
    "duration_ns",
)
"""Columns of a per-launch kernel frame (one row per kernel execution).

- ``name`` (str): full kernel name as the profiler recorded it (demangled where the
  profiler demangles; nvprof ``-o`` databases store mangled names).
- ``short_name`` (str): base function name, without namespaces, template arguments
  and parameter list.
- ``device`` (int64): GPU index the kernel ran on, ``-1`` when the trace does not say.
- ``gpu_name`` (str or None): product name of that GPU, ``None`` when unknown.
- ``start_ns``, ``end_ns`` (int64): start and end timestamps in nanoseconds on the
  profiler's own clock (only differences are meaningful across formats).
- ``duration_ns`` (int64): ``end_ns - start_ns``, nanoseconds.
"""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "name",
    "short_name",
    "calls",
    "total_ns",
    "mean_ns",
    "min_ns",
    "max_ns",
)
"""Columns of a per-kernel summary frame (one row per kernel name).

- ``name``, ``short_name`` (str): as in :data:`KERNEL_COLUMNS`.
- ``calls`` (int64): number of executions.
- ``total_ns``, ``min_ns``, ``max_ns`` (int64): sum, minimum and maximum duration, ns.
- ``mean_ns`` (float64): ``total_ns / calls``, ns.

Rows are sorted by ``total_ns`` descending, then ``name`` ascending.
"""

DIFF_COLUMNS: tuple[str, ...] = (
    "name",
    "short_name",
    "base_calls",
    "other_calls",
    "base_total_ns",
    "other_total_ns",
    "delta_ns",
    "change",
)
"""Columns of a kernel diff frame (one row per kernel name found on either side).

- ``base_calls``, ``other_calls`` (int64): executions on each side (0 when absent).
- ``base_total_ns``, ``other_total_ns`` (int64): total duration on each side, ns.
- ``delta_ns`` (int64): ``other_total_ns - base_total_ns``; the column sums exactly to
  the difference of the two sides' totals.
- ``change`` (str): ``added`` (only in other), ``removed`` (only in base), ``slower``,
  ``faster`` or ``same`` (equal total time).

Rows are sorted by ``|delta_ns|`` descending, then ``name`` ascending.
"""

CHANGES: tuple[str, ...] = ("added", "removed", "slower", "faster", "same")

Notes = Sequence[str]
"""What a reader tells the user about how it read a file (the time unit it chose, the
sections it skipped), one sentence each."""


@dataclass(frozen=True, slots=True)
class KernelStats:
    """Aggregate timing of one kernel name (all durations in integer nanoseconds)."""

    name: str
    short_name: str
    calls: int
    total_ns: int
    min_ns: int
    max_ns: int

    @property
    def mean_ns(self) -> float:
        """Mean duration in nanoseconds."""
        return self.total_ns / self.calls if self.calls else 0.0

    def as_row(self) -> dict[str, Any]:
        """This record as a dict keyed by :data:`SUMMARY_COLUMNS`."""
        return {
            "name": self.name,
            "short_name": self.short_name,
            "calls": self.calls,
            "total_ns": self.total_ns,
            "mean_ns": self.mean_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
        }


@dataclass(frozen=True)
class TraceSummary:
    """Per-kernel statistics of one trace (see :func:`merge_stats` for the order) and the
    reader's notes on how it read the file."""

    stats: list[KernelStats]
    notes: tuple[str, ...] = ()


def new_kernel_columns() -> dict[str, list[Any]]:
    """Empty column lists for a per-launch kernel table."""
    return {column: [] for column in KERNEL_COLUMNS}


def add_launch(
    columns: dict[str, list[Any]],
    name: str,
    short_name: str,
    device: int,
    gpu_name: str | None,
    start_ns: int,
    duration_ns: int,
) -> None:
    """Append one kernel execution to per-launch columns (``end_ns`` = start + duration)."""
    columns["name"].append(name)
    columns["short_name"].append(short_name)
    columns["device"].append(device)
    columns["gpu_name"].append(gpu_name)
    columns["start_ns"].append(start_ns)
    columns["end_ns"].append(start_ns + duration_ns)
    columns["duration_ns"].append(duration_ns)


def merge_stats(stats: Iterable[KernelStats]) -> list[KernelStats]:
    """Merge records that share a name and sort by total time (descending), then name."""
    merged: dict[str, KernelStats] = {}
    for item in stats:
        seen = merged.get(item.name)
        if seen is None:
            merged[item.name] = item
            continue
        merged[item.name] = KernelStats(
            name=item.name,
            short_name=seen.short_name or item.short_name,
            calls=seen.calls + item.calls,
            total_ns=seen.total_ns + item.total_ns,
            min_ns=min(seen.min_ns, item.min_ns),
            max_ns=max(seen.max_ns, item.max_ns),
        )
    return sorted(merged.values(), key=lambda s: (-s.total_ns, s.name))


def aggregate_columns(columns: dict[str, list[Any]]) -> list[KernelStats]:
    """Per-name statistics of a per-launch column table, without pandas."""
    acc: dict[str, list[Any]] = {}
    for name, short, duration in zip(
        columns["name"], columns["short_name"], columns["duration_ns"], strict=True
    ):
        slot = acc.get(name)
        if slot is None:
            acc[name] = [short, 1, duration, duration, duration]
        else:
            slot[1] += 1
            slot[2] += duration
            if duration < slot[3]:
                slot[3] = duration
            if duration > slot[4]:
                slot[4] = duration
    return merge_stats(
        KernelStats(name, short, calls, total, low, high)
        for name, (short, calls, total, low, high) in acc.items()
    )


def kernel_frame(columns: dict[str, list[Any]], notes: Notes = ()) -> pd.DataFrame:
    """A per-launch frame with :data:`KERNEL_COLUMNS`, their dtypes, and ``attrs["notes"]``."""
    import pandas as pd

    frame = pd.DataFrame({column: columns[column] for column in KERNEL_COLUMNS})
    for column in ("device", "start_ns", "end_ns", "duration_ns"):
        frame[column] = frame[column].astype("int64")
    frame["gpu_name"] = frame["gpu_name"].astype(object)
    frame.attrs["notes"] = list(notes)
    return frame


def summary_frame(stats: Sequence[KernelStats], notes: Notes = ()) -> pd.DataFrame:
    """A summary frame with :data:`SUMMARY_COLUMNS` from per-kernel records, ``attrs["notes"]``."""
    import pandas as pd

    frame = pd.DataFrame([s.as_row() for s in stats], columns=list(SUMMARY_COLUMNS))
    for column in ("calls", "total_ns", "min_ns", "max_ns"):
        frame[column] = frame[column].astype("int64")
    frame["mean_ns"] = frame["mean_ns"].astype("float64")
    frame.attrs["notes"] = list(notes)
    return frame
