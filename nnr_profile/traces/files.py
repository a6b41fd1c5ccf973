"""Opening trace files safely: path checks, read-only SQLite, truncation checks."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from nnr_profile.core.errors import TraceError

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
