"""Opening trace files safely: path checks, read-only SQLite, CSV text, truncation checks.

Text and SQLite strings are read within :mod:`~nnr_profile.profiler.traces.limits`: a CSV
line is read up to :data:`~.limits.MAX_LINE_CHARS` and no further, a CSV field or a string
from a SQLite string table over :data:`~.limits.MAX_FIELD_BYTES` is refused, read cut to
one character past the limit, never handed over whole.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.limits import MAX_FIELD_BYTES, MAX_LINE_CHARS, too_long

SQLITE_MAGIC = b"SQLite format 3\x00"
GZIP_MAGIC = b"\x1f\x8b"


def check_file(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path if it is a readable regular file, else raise TraceError."""
    p = Path(path)
    if not p.exists():
        raise TraceError(f"trace file {p} does not exist; check the path and try again")
    if p.is_dir():
        raise TraceError(
            f"{p} is a directory, not a trace file; pass one file inside it "
            "(e.g. the .sqlite export or the .json/.json.gz trace)"
        )
    if not p.is_file():
        raise TraceError(f"{p} is not a regular file; pass a trace file")
    if not os.access(p, os.R_OK):
        raise TraceError(f"trace file {p} is not readable; check its permissions")
    return p


def read_head(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` bytes of a file."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise TraceError(f"cannot read {path} ({exc.strerror}); check the file") from None


def check_sqlite_complete(path: Path) -> None:
    """Raise TraceError if the SQLite header promises more pages than the file holds."""
    header = read_head(path, 100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise TraceError(f"{path} is not a SQLite database (bad header); export the trace again")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    page_count = int.from_bytes(header[28:32], "big")
    header_count_valid = header[24:28] == header[92:96] and page_count > 0
    if header_count_valid and path.stat().st_size < page_size * page_count:
        raise TraceError(
            f"{path} is truncated ({path.stat().st_size} of {page_size * page_count} bytes); "
            "copy or export the trace again"
        )


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def open_sqlite_readonly(path: Path) -> sqlite3.Connection:
    """Open a SQLite file read-only (URI ``mode=ro``) with lenient UTF-8 text decoding."""
    check_sqlite_complete(path)
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise TraceError(f"cannot open {path} as SQLite ({exc}); check the file") from None
    conn.text_factory = _decode_text
    return conn


@contextmanager
def reading_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a SQLite trace, closed after use; SQLite errors inside
    become a TraceError that says the file is truncated or corrupt."""
    conn = open_sqlite_readonly(path)
    try:
        yield conn
    except sqlite3.Error as exc:
        raise sqlite_failure(path, exc) from None
    finally:
        conn.close()


def sqlite_failure(path: Path, exc: sqlite3.Error) -> TraceError:
    """A TraceError for a SQLite error met while reading ``path``."""
    return TraceError(
        f"{path} could not be read as a SQLite trace ({exc}); the file is truncated or "
        "corrupt, copy or export it again"
    )


def table_names(conn: sqlite3.Connection) -> set[str]:
    """Names of the tables in a SQLite database."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def column_names(conn: sqlite3.Connection, table: str) -> list[str]:
    """Column names of one table."""
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")').fetchall()]


def capped_text(column: str) -> str:
    """SQL for a text column's value cut to one character past
    :data:`~.limits.MAX_FIELD_BYTES`: a longer value is never handed over whole (SQLite still
    reads it once), and :func:`check_size` refuses what comes back over the limit."""
    return f"substr({column}, 1, {MAX_FIELD_BYTES + 1})"


def check_size(path: Path, what: str, value: object) -> None:
    """Refuse a SQLite string (read through :func:`capped_text`) over the field limit."""
    if isinstance(value, str) and len(value.encode("utf-8", "replace")) > MAX_FIELD_BYTES:
        raise too_long(path, what, None, MAX_FIELD_BYTES, "bytes")


def strings_by_id(
    conn: sqlite3.Connection, path: Path, table: str, id_column: str, ids: Iterable[int | None]
) -> dict[int, str]:
    """Map id -> text from a string table (nsys ``StringIds``, nvprof ``StringTable``); a
    string over :data:`~.limits.MAX_FIELD_BYTES` bytes is refused, naming its id."""
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, str] = {}
    for offset in range(0, len(wanted), 500):
        chunk = wanted[offset : offset + 500]
        query = (
            f'SELECT "{id_column}", {capped_text("value")} FROM "{table}" '
            f'WHERE "{id_column}" IN ({",".join("?" * len(chunk))})'
        )
        for key, value in conn.execute(query, chunk):
            check_size(path, f"a string in {table} (id {key})", value)
            found[int(key)] = str(value)
    return found


def check_kernel_times(
    conn: sqlite3.Connection,
    path: Path,
    table: str,
    name_column: str,
    names: Callable[[set[int]], dict[int, str]],
) -> None:
    """Refuse a kernel table with a non-integer start/end or an end before its start, naming
    the first such kernel (``names`` maps name ids to text)."""
    name_sql = (
        f'CASE WHEN typeof("{name_column}") = \'integer\' THEN "{name_column}" '
        f'ELSE substr("{name_column}", 1, 200) END'
    )
    bad = conn.execute(
        f'SELECT {name_sql}, start, "end" FROM "{table}" '
        "WHERE typeof(start) != 'integer' OR typeof(\"end\") != 'integer' OR \"end\" < start "
        "LIMIT 1"
    ).fetchone()
    if bad is None:
        return
    name_id, start, end = bad
    name = names({name_id}).get(name_id, name_id) if type(name_id) is int else name_id
    raise TraceError(
        f"{path}: kernel {name!r} in {table} has start {start!r} and end {end!r}; times must "
        "be integers with the end not before the start, the file is corrupt"
    )


def open_csv_text(path: Path, what: str) -> TextIO:
    """``path`` opened as CSV text (UTF-8, undecodable bytes replaced) once it is known to be
    text whose last line is complete; ``what`` names the expected format in errors."""
    head = read_head(path, 8192)
    if head.startswith(GZIP_MAGIC):
        kind = "gzip-compressed"
    elif head.startswith(SQLITE_MAGIC):
        kind = "a SQLite database"
    elif b"\x00" in head:
        kind = "binary"
    else:
        kind = ""
    if kind:
        raise TraceError(f"{path} is {kind}, not {what} (a CSV text file)")
    try:
        with path.open("rb") as raw:
            raw.seek(0, os.SEEK_END)
            if raw.tell():
                raw.seek(-1, os.SEEK_END)
                if raw.read(1) != b"\n":
                    raise TraceError(
                        f"{path} is truncated (its last line is incomplete); copy it again"
                    )
        return path.open(encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise TraceError(f"cannot read {path} ({exc.strerror}); check the file") from None


def csv_lines(path: Path, handle: TextIO) -> Iterator[str]:
    """The lines of a CSV text, each read up to :data:`~.limits.MAX_LINE_CHARS` characters:
    a longer line is refused before it is held whole."""
    while line := handle.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            raise too_long(path, "a line", None, MAX_LINE_CHARS, "characters")
        yield line


def csv_rows(path: Path, lines: Iterable[str]) -> Iterator[list[str]]:
    """CSV rows of ``lines`` (blank lines skipped); malformed CSV, or a field over
    :data:`~.limits.MAX_FIELD_BYTES` characters, is a TraceError."""
    reader = csv.reader((ln for ln in lines if ln.strip()), strict=True)
    try:
        for row in reader:
            longest = max(map(len, row), default=0)
            if longest > MAX_FIELD_BYTES:
                raise too_long(path, "a CSV field", longest, MAX_FIELD_BYTES, "characters")
            yield row
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise too_long(
                path, "a CSV field", None, csv.field_size_limit(), "characters"
            ) from None
        raise TraceError(f"{path} is not valid CSV ({exc}); the file is corrupt") from None
