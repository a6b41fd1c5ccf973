"""Shared helpers for the trace tests: fixture location and independent expected values."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

FIXTURES = Path(
    os.environ.get("NNR_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)


def fixture(relative: str) -> Path:
    """Path of one fixture file; skips the test when the fixtures are not checked out."""
    path = FIXTURES / relative
    if not path.exists():
        pytest.skip(f"fixture {path} not present (set NNR_FIXTURES)")
    return path


def sqlite_kernel_totals(path: Path, tables: tuple[str, ...]) -> tuple[int, int]:
    """(count, sum(end - start)) over the given kernel tables, by plain SQL."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.text_factory = bytes
    count = total = 0
    for table in tables:
        n, t = conn.execute(f'SELECT COUNT(*), TOTAL("end" - start) FROM {table}').fetchone()
        count += n
        total += int(t)
    conn.close()
    return count, total


NS_SINCE_2000 = 946_684_800_000_000_000


def kineto_kernel_totals(path: Path) -> tuple[int, int]:
    """(count, total ns) of kernel events by the json module, each dur rounded to ns exactly.

    Uses Decimal of the number's shortest repr, rounding half to even: the documented rule.
    Values are microseconds (the Trace Event Format's unit); nanoseconds only where
    displayTimeUnit is "ns" and every kernel ts is a whole number of ns after 2000.
    """
    raw = path.read_bytes()
    doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    kernels = [
        e
        for e in doc["traceEvents"]
        if e.get("ph") == "X" and str(e.get("cat", "")).lower() == "kernel"
    ]
    whole = all(float(e["ts"]).is_integer() and float(e["dur"]).is_integer() for e in kernels)
    ns_unit = (
        doc.get("displayTimeUnit") == "ns"
        and whole
        and min(e["ts"] for e in kernels) >= NS_SINCE_2000
    )
    scale = 1 if ns_unit else 1000
    total = 0
    for event in kernels:
        value = Decimal(repr(event["dur"])) * scale
        total += int(value.to_integral_value(rounding=ROUND_HALF_EVEN))
    return len(kernels), total
