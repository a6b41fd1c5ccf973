"""Merge results stores (shards of a cluster sweep, stores from other machines) into one store.

The merge is generic, table by table, so tables added to the store schema later merge too:

- tables are copied parents first, following their declared foreign keys;
- a table whose rows have an identity key (an ``INTEGER PRIMARY KEY`` row id plus a one-column
  ``UNIQUE`` key, like ``trials.cell_key`` or ``replicas.replica_key``) keeps one row per key:
  a successful row over a failed one (``status``), else the one with the newest
  ``finished_at`` (a re-run replaces, as in ``Store.record``); on a tie the row already in the
  target stays, so merging the same store twice changes nothing;
- rows of a table with a row id but no identity key are appended with new ids;
- child rows (``iterations``, ``kernels``, ``predictions``) follow their parent: copied with the
  parent's new id when the parent was taken, skipped when the target's copy was kept;
- other rows (``environments``, keyed by a content hash) are inserted unless already present.

Every source is opened read-only and checked (schema version and SQLite's ``quick_check``)
before the target is touched, and so is an existing target. All sources go into the target in
one transaction, so a failed merge leaves an existing target as it was; a new target is built
beside its final name and renamed into place only when the merge succeeded.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nnr_profile.core.errors import NnrError
from nnr_profile.store.database import Store
from nnr_profile.store.rows import describe, insert_row, takes_over
from nnr_profile.store.schema import connect, quote, store_error

SKIPPED_TABLES = {"meta"}


@dataclass
class MergeOutcome:
    """What a merge did: sources read, and per identity-keyed table rows added/replaced/kept.

    `kept_successful` names, per table, the successful rows kept where a source had a newer
    failed run of the same key (a failed run never replaces a successful one).
    """

    sources: int = 0
    added: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    kept_successful: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: per table, rows added, replaced, already there, and kept over failures."""
        tables = sorted(set(self.added) | set(self.replaced) | set(self.kept))
        parts = []
        for t in tables:
            part = (
                f"{t}: {self.added.get(t, 0)} added, {self.replaced.get(t, 0)} replaced by a "
                f"newer or successful run, {self.kept.get(t, 0)} already there"
            )
            if self.kept_successful.get(t):
                part += f" ({len(self.kept_successful[t])} successful kept over a newer failure)"
            parts.append(part)
        return "; ".join(parts)

    def kept_lines(self, most: int = 10) -> list[str]:
        """One line per table that kept successful rows over newer failed runs, naming them."""
        lines = []
        for table, names in sorted(self.kept_successful.items()):
            shown = "; ".join(names[:most]) + (
                f"; and {len(names) - most} more" if len(names) > most else ""
            )
            lines.append(
                f"kept {len(names)} successful {table} row(s) where a source had a newer failed "
                f"run: {shown}"
            )
        return lines


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    row_id: str | None
    identity: str | None
    parents: dict[str, str]
    parent_keys: dict[str, str | None]


AUTO_CHECK_BYTES = 256 * 2**20
"""Store files up to this size are quick_checked on every read (a larger one on request)."""


def store_files(path: str | Path) -> list[Path]:
    """The store files a path names: itself, or the *.db files of a folder (or of its shards/)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(path.glob("*.db"))
    if not files and (path / "shards").is_dir():
        files = sorted((path / "shards").glob("*.db"))
    if not files:
        raise NnrError(
            f"no stores (*.db) in the folder {path}: pass a store file or a folder of shards "
            "(a cluster sweep writes them to <results-dir>/shards)"
        )
    return files


def check_stores(path: str | Path) -> int:
    """Run SQLite's ``quick_check`` on the store `path` (or each store of the folder); count."""
    files = store_files(path)
    for file in files:
        connect(file, write=False, check=True).close()
    return len(files)


def merge_stores(sources: Sequence[str | Path], target: str | Path) -> MergeOutcome:
    """Copy every row of `sources` into the store `target` (created if absent), one per key."""
    target = Path(target)
    paths = [p for source in sources for p in store_files(source)]
    if not paths:
        raise NnrError("nothing to merge: name at least one store or folder of shards")
    for path in paths:
        if target.exists() and path.resolve() == target.resolve():
            raise NnrError(f"{path} is the merge target itself: merge into a different store")
    connections: list[sqlite3.Connection] = []
    try:
        for path in paths:
            connections.append(connect(path, write=False, check=True))
        outcome = MergeOutcome(sources=len(paths))
        if target.exists():
            with Store(target) as store:
                _merge_all(store, zip(paths, connections, strict=True), outcome, target)
            return outcome
        build = target.with_name(f".{target.name}.merging-{os.getpid()}")
        try:
            try:
                built = Store(build)
            except (NnrError, OSError) as exc:
                raise _unwritable(target, exc.__cause__ or exc) from exc
            with built as store:
                _merge_all(store, zip(paths, connections, strict=True), outcome, target)
            os.replace(build, target)
        finally:
            for leftover in (build, *(Path(f"{build}{s}") for s in ("-wal", "-shm", "-journal"))):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        return outcome
    finally:
        for source in connections:
            source.close()


WRITE_ERRORS = ("SQLITE_READONLY", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_PERM", "SQLITE_CANTOPEN")
"""SQLite error names that a failed write to the merge target raises, not a bad source."""


def _merge_all(
    store: Store,
    sources: Iterator[tuple[Path, sqlite3.Connection]],
    out: MergeOutcome,
    target: Path,
) -> None:
    """Merge each source into `store`; an error writing the store names `target` (the path
    the user gave: `store` may be a temporary file beside it), one reading a source names it."""
    with store.transaction() as conn:
        for path, source in sources:
            try:
                _merge_one(source, conn, out)
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorname", "").startswith(WRITE_ERRORS):
                    raise _unwritable(target, exc) from exc
                raise store_error(path, exc) from exc


def _unwritable(target: Path, exc: BaseException) -> NnrError:
    return NnrError(
        f"cannot write the merge target {target} ({exc}): make it and its folder writable, "
        "or merge into another --db"
    )


@contextmanager
def open_results(path: str | Path, check: bool | None = None) -> Iterator[Store]:
    """A store to read: the file at `path`, or the shards of the folder `path` merged (each
    checked). `check`: quick_check the file first; None (the default) checks a file of at most
    AUTO_CHECK_BYTES and leaves a larger one unchecked (`Store.checked` says which)."""
    path = Path(path)
    if not path.is_dir():
        if check is None:
            check = path.is_file() and path.stat().st_size <= AUTO_CHECK_BYTES
        with Store(path, create=False, check=check) as store:
            yield store
        return
    with tempfile.TemporaryDirectory(prefix="nnr-results-") as tmp:
        merged = Path(tmp) / "merged.db"
        merge_stores([path], merged)
        with Store(merged, create=False, check=False) as store:
            store.checked = True
            yield store


def _tables(conn: sqlite3.Connection) -> dict[str, _Table]:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    tables = {}
    for name in names:
        if name in SKIPPED_TABLES:
            continue
        info = conn.execute("SELECT * FROM pragma_table_info(?)", (name,)).fetchall()
        keys = [row for row in info if row[5] > 0]
        row_id = keys[0][1] if len(keys) == 1 and keys[0][2].upper() == "INTEGER" else None
        identity = None
        for index in conn.execute("SELECT * FROM pragma_index_list(?)", (name,)).fetchall():
            if index[2] and index[3] == "u":
                cols = conn.execute("SELECT * FROM pragma_index_info(?)", (index[1],)).fetchall()
                if len(cols) == 1:
                    identity = cols[0][2]
                    break
        foreign = conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (name,)).fetchall()
        parents = {row[3]: row[2] for row in foreign}
        parent_keys = {row[3]: row[4] for row in foreign}
        tables[name] = _Table(
            name, tuple(r[1] for r in info), row_id, identity, parents, parent_keys
        )
    return tables


def _ordered(tables: dict[str, _Table]) -> list[_Table]:
    order: list[_Table] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise NnrError(f"the store's tables reference each other in a cycle at {name!r}")
        state[name] = "visiting"
        for parent in tables[name].parents.values():
            if parent in tables and parent != name:
                visit(parent)
        state[name] = "done"
        order.append(tables[name])

    for name in sorted(tables):
        visit(name)
    return order


def _merge_one(source: sqlite3.Connection, target: sqlite3.Connection, out: MergeOutcome) -> None:
    source_tables = _tables(source)
    target_tables = _tables(target)
    id_maps: dict[str, dict[int, int]] = {}
    for table in _ordered(source_tables):
        if table.name not in target_tables:
            raise NnrError(
                f"the merge target has no table {table.name!r}: merge into a store written by the "
                "same nnr-profile version"
            )
        ours = target_tables[table.name]
        columns = [c for c in table.columns if c in ours.columns]
        remapped = {
            column: parent
            for column, parent in table.parents.items()
            if parent in id_maps
            and table.parent_keys.get(column) in (None, source_tables[parent].row_id)
        }
        ids: dict[int, int] = {}
        if table.row_id is not None:
            id_maps[table.name] = ids
        selected = ", ".join(quote(c) for c in columns)
        for row in source.execute(f"SELECT {selected} FROM {quote(table.name)}"):
            values = dict(zip(columns, row, strict=True))
            if not _remap(values, remapped, id_maps):
                continue
            if table.row_id is None:
                _insert(target, table.name, values, "INSERT OR IGNORE")
                continue
            old_id = values.pop(table.row_id, None)
            if table.identity is not None and not _make_room(
                target, table, values, target_tables, out
            ):
                continue
            new_id = _insert(target, table.name, values, "INSERT")
            if old_id is not None:
                ids[old_id] = new_id


def _remap(values: dict, remapped: dict[str, str], id_maps: dict[str, dict[int, int]]) -> bool:
    """Point foreign keys at the parents' new ids; False when the parent row was not taken."""
    for column, parent in remapped.items():
        if values.get(column) is None:
            continue
        new = id_maps[parent].get(values[column])
        if new is None:
            return False
        values[column] = new
    return True


def _describe(table: _Table, values: dict) -> str:
    """A row's name for people: its describing columns, or its identity key."""
    return describe(
        {c: v for c, v in values.items() if c in table.columns}, str(values.get(table.identity))
    )


def _make_room(
    target: sqlite3.Connection,
    table: _Table,
    values: dict,
    tables: dict[str, _Table],
    out: MergeOutcome,
) -> bool:
    """Decide between the row and the target's row of the same key; True to insert the row."""
    key = values.get(table.identity)
    extra = [c for c in ("finished_at", "status") if c in table.columns]
    selected = ", ".join(quote(c) for c in [table.row_id, *extra])
    found = target.execute(
        f"SELECT {selected} FROM {quote(table.name)} WHERE {quote(table.identity)} = ?", (key,)
    ).fetchone()
    if found is None:
        out.added[table.name] = out.added.get(table.name, 0) + 1
        return True
    existing = dict(zip([table.row_id, *extra], found, strict=True))
    newer = str(values.get("finished_at") or "") > str(existing.get("finished_at") or "")
    new_status, old_status = values.get("status"), existing.get("status")
    if not takes_over(new_status, old_status, newer):
        out.kept[table.name] = out.kept.get(table.name, 0) + 1
        if newer:
            out.kept_successful.setdefault(table.name, []).append(_describe(table, values))
        return False
    _delete(target, table.name, existing[table.row_id], tables)
    out.replaced[table.name] = out.replaced.get(table.name, 0) + 1
    return True


def _delete(target: sqlite3.Connection, name: str, row_id: int, tables: dict[str, _Table]) -> None:
    """Delete a row and, first, the rows of other tables that reference it."""
    for child in tables.values():
        for column, parent in child.parents.items():
            if parent != name or child.name == name:
                continue
            if child.parent_keys.get(column) not in (None, tables[name].row_id):
                continue
            if child.row_id is None:
                target.execute(
                    f"DELETE FROM {quote(child.name)} WHERE {quote(column)} = ?", (row_id,)
                )
            else:
                rows = target.execute(
                    f"SELECT {quote(child.row_id)} FROM {quote(child.name)} "
                    f"WHERE {quote(column)} = ?",
                    (row_id,),
                ).fetchall()
                for (child_id,) in rows:
                    _delete(target, child.name, child_id, tables)
    row_id_column = tables[name].row_id
    target.execute(f"DELETE FROM {quote(name)} WHERE {quote(row_id_column)} = ?", (row_id,))


def _insert(target: sqlite3.Connection, name: str, values: dict, verb: str) -> int:
    try:
        return insert_row(target, name, values, verb)
    except sqlite3.IntegrityError as exc:
        raise NnrError(f"cannot merge a row of table {name!r}: {exc}") from exc
