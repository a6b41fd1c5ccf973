"""Sample trial results and real damaged stores for the store tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.store.database import Store

PAGE = 4096


def trial(repeat=0, status="ok", times=(1.0, 2.0, 3.0), workload="mlp", mode="default"):
    """A trial result of `workload` (a failed one carries no times unless given)."""
    spec = TrialSpec("torch", workload, MODES[mode], repeat=repeat, iterations=3)
    return TrialResult(
        spec,
        status,
        times_ms=list(times),
        losses=[0.5] * len(times),
        weights_hash="abc",
        error=None if status == "ok" else "boom",
        kernels=[{"name": "gemm", "short_name": "gemm", "calls": 3, "total_ns": 900}],
    )


def filled_store(path: Path, trials: int = 60, iterations: int = 100) -> Path:
    """A real store of many pages: `trials` trials of `iterations` timed iterations each."""
    with Store(path) as store:
        for repeat in range(trials):
            times = [1.0 + i / 1000 for i in range(iterations)]
            store.record(trial(repeat=repeat, times=times))
    return path


def pages(path: Path) -> int:
    """How many pages the store file has."""
    return path.stat().st_size // PAGE


def root_page(path: Path, table: str) -> int:
    """The page number of `table`'s b-tree root."""
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()[0]


def damage(path: Path, page: int) -> None:
    """Overwrite page `page` (1-based) of the file with garbage, as a failing disk would."""
    with open(path, "r+b") as handle:
        handle.seek((page - 1) * PAGE)
        handle.write(bytes((i * 37 + 11) % 256 for i in range(PAGE)))
