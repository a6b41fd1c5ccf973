"""Shards: one small store per sweep cell, written by a cluster task into a shared folder.

SQLite must not be written by several hosts over NFS, so a task never writes a shared store: it
records its trial into a store in its node-local temporary folder, turns that into a single
self-contained file (rollback journal, no WAL side files), copies it next to its final name in
the shard folder and renames it into place. A shard is therefore either complete or absent, and
readers on any host open it read-only.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from nnr_profile.core.errors import NnrError
from nnr_profile.core.specs import STATUS_OK, TrialResult
from nnr_profile.store.database import Store
from nnr_profile.store.schema import guarded


def shard_path(shard_dir: str | Path, cell_key: str) -> Path:
    """Where the shard of a cell lives: `<shard_dir>/<cell_key>.db`."""
    return Path(shard_dir) / f"{cell_key}.db"


def write_shard(result: TrialResult, shard_dir: str | Path) -> Path:
    """Record `result` as the shard of its cell (replacing an older shard atomically)."""
    final = shard_path(shard_dir, result.spec.cell_key)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nnr-shard-") as tmp:
        local = Path(tmp) / "shard.db"
        with Store(local) as store:
            store.record(result)
        with guarded(local):
            conn = sqlite3.connect(local)
            try:
                conn.execute("PRAGMA journal_mode = DELETE")
            finally:
                conn.close()
        staging = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        shutil.copyfile(local, staging)
        os.replace(staging, final)
    return final


def shard_statuses(shard_dir: str | Path) -> dict[str, tuple[str, str | None]]:
    """(status, error) of the trial in each readable shard of `shard_dir`, by cell key."""
    statuses: dict[str, tuple[str, str | None]] = {}
    folder = Path(shard_dir)
    if not folder.is_dir():
        return statuses
    for path in sorted(folder.glob("*.db")):
        try:
            with Store(path, create=False) as store:
                statuses.update(store.cell_statuses())
        except NnrError:
            continue
    return statuses


def done_cells(db: str | Path, shard_dir: str | Path | None = None) -> set[str]:
    """Cell keys with a successful trial in the store `db` (if it exists) or in a shard."""
    statuses = shard_statuses(shard_dir) if shard_dir is not None else {}
    done = {key for key, (status, _) in statuses.items() if status == STATUS_OK}
    if Path(db).exists():
        with Store(db, create=False) as store:
            done |= store.done_cells()
    return done
