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


def kineto_kernel_totals(path: Path) -> tuple[int, int]:
    """(count, total ns) of kernel events by the json module, each dur rounded to ns exactly.

    Uses Decimal of the number's shortest repr, rounding half to even: the documented rule.
    """
    doc = json.loads(gzip.decompress(path.read_bytes()))
    ns_unit = doc.get("displayTimeUnit") == "ns"
    count = total = 0
    for event in doc["traceEvents"]:
        if event.get("ph") == "X" and str(event.get("cat", "")).lower() == "kernel":
            scale = 1 if ns_unit else 1000
            value = Decimal(repr(event["dur"])) * scale
            total += int(value.to_integral_value(rounding=ROUND_HALF_EVEN))
            count += 1
    return count, total
