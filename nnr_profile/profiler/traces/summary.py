"""Per-kernel summaries and diffs: pure-Python cores plus DataFrame front ends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nnr_profile.profiler.traces.schema import (
    DIFF_COLUMNS,
    KernelStats,
    merge_stats,
    summary_frame,
)

if TYPE_CHECKING:
    import pandas as pd


def summarize_kernels(df: pd.DataFrame) -> pd.DataFrame:
    """One row per kernel name (:data:`~.schema.SUMMARY_COLUMNS`), by total time descending.

    Accepts a per-launch frame (:data:`~.schema.KERNEL_COLUMNS`) or a summary-shaped frame
    (``name``, ``calls``, ``total_ns``, optional ``min_ns``/``max_ns``/``short_name``), which
    is re-aggregated per name.
    """
    return summary_frame(frame_stats(df))


def frame_stats(df: pd.DataFrame) -> list[KernelStats]:
    """Per-name :class:`KernelStats` of a per-launch or summary-shaped frame."""
    if "duration_ns" in df.columns:
        short = df["short_name"] if "short_name" in df.columns else df["name"]
        grouped = (
            df.assign(short_name=short)
            .groupby("name", sort=False)
            .agg(
                short_name=("short_name", "first"),
                calls=("duration_ns", "size"),
                total_ns=("duration_ns", "sum"),
                min_ns=("duration_ns", "min"),
                max_ns=("duration_ns", "max"),
            )
        )
        return merge_stats(
            KernelStats(
                str(r.Index),
                str(r.short_name),
                int(r.calls),
                int(r.total_ns),
                int(r.min_ns),
                int(r.max_ns),
            )
            for r in grouped.itertuples()
        )
    missing = {"name", "calls", "total_ns"} - set(df.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}; expected kernel or summary rows")
    records = df.to_dict("records")
    return merge_stats(
        KernelStats(
            name=str(r["name"]),
            short_name=str(r.get("short_name", r["name"])),
            calls=int(r["calls"]),
            total_ns=int(r["total_ns"]),
            min_ns=int(r.get("min_ns", 0)),
            max_ns=int(r.get("max_ns", 0)),
        )
        for r in records
    )


def diff_rows(base: Sequence[KernelStats], other: Sequence[KernelStats]) -> list[dict[str, Any]]:
    """Per-kernel comparison rows (:data:`~.schema.DIFF_COLUMNS`) of two summaries, no pandas."""
    left = {s.name: s for s in merge_stats(base)}
    right = {s.name: s for s in merge_stats(other)}
    rows = []
    for name in left.keys() | right.keys():
        b, o = left.get(name), right.get(name)
        base_total = b.total_ns if b else 0
        other_total = o.total_ns if o else 0
        delta = other_total - base_total
        if b is None:
            change = "added"
        elif o is None:
            change = "removed"
        else:
            change = "slower" if delta > 0 else "faster" if delta < 0 else "same"
        rows.append(
            {
                "name": name,
                "short_name": (b or o).short_name,  # type: ignore[union-attr]
                "base_calls": b.calls if b else 0,
                "other_calls": o.calls if o else 0,
                "base_total_ns": base_total,
                "other_total_ns": other_total,
                "delta_ns": delta,
                "change": change,
            }
        )
    rows.sort(key=lambda r: (-abs(r["delta_ns"]), r["name"]))
    return rows


def diff_kernels(base_summary: pd.DataFrame, other_summary: pd.DataFrame) -> pd.DataFrame:
    """Compare two kernel summaries per name (:data:`~.schema.DIFF_COLUMNS`).

    ``delta_ns`` is an exact integer, so ``delta_ns.sum()`` equals
    ``other_summary.total_ns.sum() - base_summary.total_ns.sum()``.
    Per-launch frames are accepted too and summarised first.
    """
    import pandas as pd

    rows = diff_rows(frame_stats(base_summary), frame_stats(other_summary))
    frame = pd.DataFrame(rows, columns=list(DIFF_COLUMNS))
    for column in ("base_calls", "other_calls", "base_total_ns", "other_total_ns", "delta_ns"):
        frame[column] = frame[column].astype("int64")
    return frame
