"""NVTX ranges around the timed region and each timed iteration, and reading them back.

Ranges live in the domain `nnr_profile`: the timed region is `nnr-timed` (what an Nsight
Systems capture range is bound to), each iteration `iteration N`.
"""

from __future__ import annotations

import sqlite3
from contextlib import nullcontext
from pathlib import Path
from typing import Any

DOMAIN = "nnr_profile"
TIMED_RANGE = "nnr-timed"


def nvtx_range(message: str) -> Any:
    """A push/pop NVTX range in the project's domain (a no-op without the `nvtx` package)."""
    try:
        import nvtx
    except ImportError:
        return nullcontext()
    return nvtx.annotate(message, domain=DOMAIN)


def read_nvtx_ranges(sqlite_path: Path) -> list[tuple[str, int, int]]:
    """(text, start_ns, end_ns) of every closed NVTX range in an nsys SQLite export, by start."""
    uri = f"file:{sqlite_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "NVTX_EVENTS" not in tables:
            return []
        join = "LEFT JOIN StringIds s ON s.id = e.textId" if "StringIds" in tables else ""
        text = "COALESCE(e.text, s.value)" if join else "e.text"
        rows = conn.execute(
            f"SELECT {text}, e.start, e.end FROM NVTX_EVENTS e {join} "
            "WHERE e.end IS NOT NULL ORDER BY e.start"
        ).fetchall()
    return [(str(t), int(a), int(b)) for t, a, b in rows if t is not None]
