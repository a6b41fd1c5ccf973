"""Recognising a trace format from the file's content (the extension is only a hint)."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

from nnr_profile.core.errors import TraceError
from nnr_profile.traces.files import (
    GZIP_MAGIC,
    SQLITE_MAGIC,
    check_file,
    open_sqlite_readonly,
    read_head,
    sqlite_failure,
    table_names,
)
from nnr_profile.traces.nsys_stats_csv import find_header

SUPPORTED = (
    "Nsight Systems SQLite export, nvprof CSV (--print-gpu-trace/--print-gpu-summary) or "
    "-o database, nsys stats kernel-summary CSV, PyTorch profiler (Kineto) JSON/JSON.gz, "
    "TensorFlow profiler .xplane.pb"
)


def _sqlite_kind(path: Path) -> str:
    conn = open_sqlite_readonly(path)
    try:
        tables = table_names(conn)
    except sqlite3.Error as exc:
        raise sqlite_failure(path, exc) from None
    finally:
        conn.close()
    if "StringTable" in tables or "CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL" in tables:
        return "nvprof-sqlite"
    if "StringIds" in tables or any(t.startswith("TARGET_INFO_") for t in tables):
        return "nsys-sqlite"
    raise TraceError(
        f"{path} is a SQLite database but neither an Nsight Systems export nor an nvprof "
        "database; pass a file from 'nsys export --type sqlite' or 'nvprof -o'"
    )


def _text_kind(path: Path, text: str) -> str | None:
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        return "kineto"
    lines = [ln for ln in stripped.splitlines() if ln.strip()]
    data = [ln for ln in lines if not ln.startswith("==")]
    if data and (len(data) < len(lines) or '"Start","Duration"' in data[0] or '"Calls"' in data[0]):
        return "nvprof-csv"
    if find_header(lines) >= 0:
        return "nsys-stats-csv"
    return None


def detect_format(path: str | Path) -> str:
    """Name of the reader for a trace file (see :data:`READERS`), judged by its content."""
    p = check_file(path)
    head = read_head(p)
    if not head:
        raise TraceError(f"{p} is empty; the trace was not written, profile again")
    if p.name.lower().endswith(".xplane.pb"):  # protobuf has no magic: trust the name
        return "tf-xplane"
    if head.startswith(SQLITE_MAGIC):
        return _sqlite_kind(p)
    if head.startswith(GZIP_MAGIC):
        try:
            text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 4096)
        except zlib.error as exc:
            raise TraceError(f"{p} is a corrupt gzip file ({exc}); copy it again") from None
        if text.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
            return "kineto"
        raise TraceError(f"{p} is gzip-compressed but not JSON; expected a Kineto .json.gz")
    suffix = "".join(p.suffixes[-1:]).lower()
    if suffix in (".nsys-rep", ".qdrep"):
        raise TraceError(
            f"{p} is an Nsight Systems report; export it first: nsys export --type sqlite {p}"
        )
    if b"\x00" not in head[:4096]:
        kind = _text_kind(p, head.decode("utf-8", errors="replace"))
        if kind is not None:
            return kind
    if suffix == ".pb":
        raise TraceError(
            f"{p} looks like a protobuf file; TensorFlow profiler files must be named *.xplane.pb"
        )
    raise TraceError(f"{p} is not a trace format nnr-profile can read; supported: {SUPPORTED}")
