"""Results waiting to be stored: kept as JSON files next to a store that stayed locked.

A finished trial (or replica) whose write the store refused because another process held its
write lock through every retry is written to ``<store>.pending/`` instead (atomically, one
file per result, named by its identity key) and stored by the next successful write to that
store, or when the store is next opened for writing. Nothing is lost and the sweep goes on.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Entry:
    """One result ready to write: its row, its child rows per table, and its environment."""

    table: str
    key: str
    row: dict[str, Any]
    children: dict[str, list[dict[str, Any]]]
    environment: tuple[str, str]

    @property
    def status(self) -> str | None:
        """The result's status ('ok', 'failed', ...)."""
        return self.row.get("status")


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value


class Pending:
    """The pending-results folder of the store at `store_path` (``<store>.pending``)."""

    def __init__(self, store_path: Path) -> None:
        self.folder = store_path.with_name(store_path.name + ".pending")
        self._read: dict[Path, int] = {}

    def _file(self, table: str, key: str) -> Path:
        digest = hashlib.sha256(f"{table}\0{key}".encode()).hexdigest()[:32]
        return self.folder / f"{table}-{digest}.json"

    def keep(self, entry: Entry) -> Path:
        """Write `entry` to the folder (replacing a pending copy of the same key); its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._file(entry.table, entry.key)
        data = {
            "table": entry.table,
            "key": entry.key,
            "row": {k: _encode(v) for k, v in entry.row.items()},
            "children": entry.children,
            "environment": list(entry.environment),
        }
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staging.write_text(json.dumps(data), encoding="utf-8")
        os.replace(staging, path)
        return path

    def read(self, table: str, key: str) -> Entry | None:
        """The pending result of `key` in `table`, if there is a readable one."""
        return _load(self._file(table, key))

    def entries(self) -> list[tuple[Path, Entry]]:
        """The readable pending results, oldest first (unreadable files are left in place)."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json"), key=_age):
            entry = _load(path)
            if entry is not None:
                found.append((path, entry))
                self._read[path] = _inode(path)
        return found

    def drop(self, paths: list[Path]) -> None:
        """Remove stored pending files, each unless a newer copy replaced it since it was read."""
        for path in paths:
            if self._read.pop(path, None) == _inode(path):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.folder.rmdir()

    def set_aside(self, path: Path) -> Path:
        """Rename a pending file that cannot be stored to ``*.unusable`` (kept for a person)."""
        aside = path.with_suffix(".unusable")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        return aside

    def keys(self, table: str, status: str) -> set[str]:
        """Keys of pending results of `table` with `status`."""
        return {e.key for _, e in self.entries() if e.table == table and e.status == status}


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return -1


def _age(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _load(path: Path) -> Entry | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Entry(
            table=data["table"],
            key=data["key"],
            row={k: _decode(v) for k, v in data["row"].items()},
            children=data["children"],
            environment=(data["environment"][0], data["environment"][1]),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
