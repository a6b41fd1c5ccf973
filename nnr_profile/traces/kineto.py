"""PyTorch profiler (Kineto) Chrome traces: ``.json`` or gzip-compressed ``.json.gz``.

Kernels are events with ``cat == "kernel"`` (any case) and ``ph == "X"``. Times:
``ts`` and ``dur`` are microseconds (the Chrome trace format's unit; Kineto writes
``"displayTimeUnit": "ms"``, which only sets how viewers display time). The single
exception is ``"displayTimeUnit": "ns"``, which Perfetto's importer reads as values in
nanoseconds; then values are taken as ns.

Rounding rule (microsecond values): each JSON number, as the IEEE double any JSON
parser yields, is split into whole microseconds and a fraction; the fraction times
1000 is rounded to the nearest integer ns, ties to even, so ``6.88`` gives 6880 ns and
integers are exact. ``duration_ns`` comes from ``dur`` alone and ``end_ns`` is
``start_ns + duration_ns``; totals are sums of the per-event integers. ``ts`` values
above 2**33 us lose sub-nanosecond digits in any double-based parser, ``dur`` never in
practice. The GPU of a kernel is ``deviceProperties[i]`` whose ``id`` equals
``args.device`` (position ``args.device`` when entries carry no ``id``).

Speed: Kineto writes every event as a block from a line ``  {`` to a line ``  }``, and
JSON strings cannot hold raw newlines, so the reader finds each ``"cat": "kernel"`` key,
parses only its block and the top-level fields, and checks every block it parsed. When
the layout differs (minified JSON, other writers) it parses the whole file instead; both
paths give the same rows.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from nnr_profile.core.errors import TraceError
from nnr_profile.traces.files import GZIP_MAGIC
from nnr_profile.traces.names import short_from_demangled
from nnr_profile.traces.schema import (
    KernelStats,
    aggregate_columns,
    kernel_frame,
    new_kernel_columns,
)

if TYPE_CHECKING:
    import pandas as pd


def us_to_ns(value: float) -> int:
    """Microseconds (JSON int or float) to integer ns by the module's rounding rule."""
    if type(value) is int:
        return value * 1000
    whole = math.floor(value)
    return int(whole) * 1000 + round((value - whole) * 1000)


def ns_to_ns(value: float) -> int:
    """Nanosecond values (``displayTimeUnit == "ns"``) to int, rounding half to even."""
    return value if type(value) is int else round(value)


def _raw_json(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read {path} ({exc.strerror}); check the file") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise TraceError(
                f"{path} is a truncated or corrupt gzip file ({exc}); copy or export it again"
            ) from None
    return raw


def _parse(raw: bytes, path: Path) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TraceError(
            f"{path} is not valid JSON ({exc}); the trace is truncated or corrupt, export it again"
        ) from None


_EVENTS_KEY = re.compile(rb'\n  "traceEvents"\s*:\s*\[')
_KERNEL_CAT = re.compile(rb'"cat"\s*:\s*"(?i:kernel)"')


def _fast_events(raw: bytes) -> tuple[dict[str, Any], list[Any]] | None:
    """Top-level fields and kernel events of a Kineto-layout trace, or None if not that layout."""
    key = _EVENTS_KEY.search(raw)
    end = raw.find(b"\n  ]", key.end()) if key else -1
    if key is None or end < 0:
        return None
    blocks, starts = [], set()
    for match in _KERNEL_CAT.finditer(raw, key.end(), end):
        first = raw.rfind(b"\n  {", key.end() - 1, match.start())
        last = raw.find(b"\n  }", match.end(), end + 1)
        if first < 0 or last < 0 or first in starts:
            return None
        starts.add(first)
        blocks.append(raw[first : last + 4])
    try:
        meta = orjson.loads(raw[: key.start()] + b'\n  "traceEvents": []' + raw[end + 4 :])
        events = orjson.loads(b"[" + b",".join(blocks) + b"]")
    except orjson.JSONDecodeError:
        return None
    for event in events:
        cat = event.get("cat") if isinstance(event, dict) else None
        if not isinstance(cat, str) or cat.lower() != "kernel":
            return None
    if not isinstance(meta, dict):
        return None
    return meta, events


def load_events(path: Path, fast: bool = True) -> tuple[dict[str, Any], list[Any]]:
    """Top-level fields (without ``traceEvents``) and the event list of a trace.

    With ``fast`` (default) and Kineto's layout, the list holds only the kernel events.
    """
    raw = _raw_json(path)
    found = _fast_events(raw) if fast else None
    if found is not None:
        return found
    doc = _parse(raw, path)
    if isinstance(doc, list):
        return {}, doc
    if isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list):
        return doc, doc["traceEvents"]
    raise TraceError(f"{path} is JSON but not a Chrome trace (no traceEvents list)")


def _gpu_table(doc: dict[str, Any]) -> dict[int, str]:
    table: dict[int, str] = {}
    props = doc.get("deviceProperties")
    if not isinstance(props, list):
        return table
    for position, entry in enumerate(props):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            key = entry.get("id", position)
            table[key if isinstance(key, int) else position] = entry["name"]
    return table


def kineto_columns(path: Path, fast: bool = True) -> dict[str, list[Any]]:
    """Per-launch kernel columns of a Kineto trace, as plain lists (see :func:`load_events`)."""
    doc, events = load_events(path, fast)
    convert: Callable[[Any], int] = ns_to_ns if doc.get("displayTimeUnit") == "ns" else us_to_ns
    gpus = _gpu_table(doc)
    columns = new_kernel_columns()
    names, shorts, devices, gpu_names = (
        columns["name"],
        columns["short_name"],
        columns["device"],
        columns["gpu_name"],
    )
    starts, ends, durations = columns["start_ns"], columns["end_ns"], columns["duration_ns"]
    short_cache: dict[str, str] = {}
    for event in events:
        if not isinstance(event, dict) or event.get("ph") != "X":
            continue
        cat = event.get("cat")
        if not isinstance(cat, str) or cat.lower() != "kernel":
            continue
        name, ts, dur = event.get("name"), event.get("ts"), event.get("dur")
        if not isinstance(name, str) or not isinstance(ts, int | float):
            raise TraceError(f"{path} has a kernel event without a name or ts; file is corrupt")
        if not isinstance(dur, int | float):
            raise TraceError(f"{path} has a kernel event without dur; the file is corrupt")
        args = event.get("args")
        device = args.get("device") if isinstance(args, dict) else None
        device = device if isinstance(device, int) else -1
        start, duration = convert(ts), convert(dur)
        short = short_cache.get(name)
        if short is None:
            short = short_cache[name] = short_from_demangled(name)
        names.append(name)
        shorts.append(short)
        devices.append(device)
        gpu_names.append(gpus.get(device))
        starts.append(start)
        ends.append(start + duration)
        durations.append(duration)
    if not names:
        raise TraceError(
            f"{path} has no kernels (no events with cat 'kernel'); profile with "
            "torch.profiler activities including ProfilerActivity.CUDA"
        )
    return columns


def summarize_kineto(path: Path) -> list[KernelStats]:
    """Per-kernel statistics of a Kineto trace, without pandas."""
    return aggregate_columns(kineto_columns(path))


def read_kineto(path: Path) -> pd.DataFrame:
    """One row per kernel execution, columns :data:`~.schema.KERNEL_COLUMNS`."""
    return kernel_frame(kineto_columns(path))
