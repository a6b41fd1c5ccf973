"""PyTorch profiler (Kineto) Chrome traces: ``.json`` or gzip-compressed ``.json.gz``.

Kernels are events with ``cat == "kernel"`` (any case) and ``ph == "X"``; each needs a string
``name``, a number ``ts`` and a number ``dur`` that is not negative, or the file is refused
with the event named (``traceEvents[i]``). The GPU of a kernel is ``deviceProperties[i]``
whose ``id`` equals ``args.device`` (position ``args.device`` when entries carry no ``id``).

Units: ``ts`` and ``dur`` are microseconds, the Trace Event Format's unit. ``displayTimeUnit``
is a display hint: Kineto writes ``"ms"``, and ``"ns"`` in its nanosecond-precision traces,
whose values stay fractional microseconds (``dur: 4.928`` for a 4.9 us kernel; HolisticTrace
Analysis reads them so). Values are read as nanoseconds only where they prove it:
``displayTimeUnit`` is ``"ns"`` and every kernel ``ts`` is a whole number at or after
:data:`NS_PROOF_TS` (2000-01-01 in nanoseconds since 1970; read as microseconds that would
be more than 30,000 years away). The unit read, and why, is the summary's note.

Rounding rule (microsecond values): each JSON number, as the IEEE double any JSON parser
yields, is split into whole microseconds and a fraction; the fraction times 1000 is rounded
to the nearest integer ns, ties to even, so ``6.88`` gives 6880 ns and integers are exact.
``duration_ns`` comes from ``dur`` alone and ``end_ns`` is ``start_ns + duration_ns``;
totals are sums of the per-event integers.

Memory and speed: the file is streamed (gzip and JSON, with ijson), never held whole: memory
holds one event at a time plus the kernel columns, whatever the file's size. One pass reads
the events and keeps the stream's first and last :data:`ENDS` bytes, where Chrome traces keep
their other top-level fields (Kineto: ``deviceProperties`` before the events,
``displayTimeUnit`` after them); when those fields are not found there, a second pass reads
them (skipping the events).

Bounds: every byte reaches the parser through :class:`JsonBounds`, which refuses nesting
deeper than :data:`~.limits.MAX_JSON_DEPTH` and a string, key or number longer than
:data:`~.limits.MAX_FIELD_BYTES` before the parser sees the chunk that holds it; its scan is
a few C-level byte operations per read, so time and memory stay linear in the file's size.
"""

from __future__ import annotations

import collections
import gzip
import io
import itertools
import math
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import ijson
import orjson

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.base import Probe, TraceReader, register_reader
from nnr_profile.profiler.traces.files import GZIP_MAGIC, read_head
from nnr_profile.profiler.traces.limits import MAX_FIELD_BYTES, MAX_JSON_DEPTH, too_long
from nnr_profile.profiler.traces.names import short_from_demangled
from nnr_profile.profiler.traces.schema import (
    TraceSummary,
    add_launch,
    aggregate_columns,
    kernel_frame,
    new_kernel_columns,
)

if TYPE_CHECKING:
    import pandas as pd

NS_PROOF_TS = 946_684_800_000_000_000
"""2000-01-01T00:00:00Z in nanoseconds since the Unix epoch."""

ENDS = 65536
"""Bytes kept from each end of the JSON stream for the top-level fields."""


def us_to_ns(value: float) -> int:
    """Microseconds (JSON int or float) to integer ns by the module's rounding rule."""
    if type(value) is int:
        return value * 1000
    whole = math.floor(value)
    return int(whole) * 1000 + round((value - whole) * 1000)


def ns_to_ns(value: float) -> int:
    """Nanosecond values to int, rounding half to even."""
    return value if type(value) is int else round(value)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_KEEP = b'[]{}"'
_NOT_KEPT = bytes(b for b in range(256) if b not in _KEEP)
_STEP = tuple(1 if b in b"[{" else -1 for b in range(256))
_ENDS_TOKEN = b'[]{},:" \t\r\n'
_TOKEN_ENDS = bytes.maketrans(_ENDS_TOKEN, b" " * len(_ENDS_TOKEN))


class JsonBounds:
    """A stream that passes reads through and refuses JSON past the module's bounds.

    It follows the JSON text read by read (inside a string or not, a pending backslash, the
    nesting depth, the length of a string or bare token that runs on into the next read), so
    a value that spans reads is measured whole; an escape counts as one byte. Each read is at
    most :data:`~.limits.MAX_FIELD_BYTES` long, so only a value that spans reads can be too
    long. The work per read is C-level byte operations: escapes become one byte, the quotes
    and brackets are kept, and the quotes of strings without brackets drop out in pairs
    (which keeps every bracket's parity), so the brackets left to walk are few. Invalid JSON
    may be measured wrongly after its first error, which the parser reports on its own.
    """

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self._stream = stream
        self._path = path
        self._in_string = False
        self._escape = False
        self._depth = 0
        self._string = 0
        self._token = 0

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (at most the field limit), checked before they return."""
        size = MAX_FIELD_BYTES if size < 0 else min(size, MAX_FIELD_BYTES)
        data = self._stream.read(size)
        if data:
            self._check(data)
        return data

    def _check(self, data: bytes) -> None:
        if self._escape:
            data, self._escape, self._string = data[1:], False, self._string + 1
        data = _ESCAPE.sub(b"_", data)
        if data.endswith(b"\\"):
            data, self._escape = data[:-1], True
        kept = data.translate(None, _NOT_KEPT)
        start_in = self._in_string
        end_in = start_in ^ bool(kept.count(b'"') % 2)
        self._check_lengths(data, start_in, end_in)
        kept = (b'"' if start_in else b"") + kept.replace(b'""', b"")
        if b'"' in kept:
            kept = b"".join(kept.split(b'"')[0::2])
        self._check_depth(kept)
        self._in_string = end_in

    def _check_lengths(self, data: bytes, start_in: bool, end_in: bool) -> None:
        """The string or bare token (number, literal) that runs on from the last read, and
        the one that runs on into the next."""
        first = data.find(b'"')
        bare = data.translate(_TOKEN_ENDS)
        cut = bare.find(b" ")
        if start_in:
            self._string += len(data) if first < 0 else first
            if self._string > MAX_FIELD_BYTES:
                raise too_long(self._path, "a JSON string", None, MAX_FIELD_BYTES, "bytes")
        else:
            self._token += len(bare) if cut < 0 else cut
            if self._token > MAX_FIELD_BYTES:
                raise too_long(
                    self._path, "a JSON number or literal", None, MAX_FIELD_BYTES, "bytes"
                )
        if end_in:
            if first >= 0:
                self._string = len(data) - 1 - data.rfind(b'"')
            self._token = 0
        elif cut >= 0:
            self._token = len(bare) - 1 - bare.rfind(b" ")

    def _check_depth(self, brackets: bytes) -> None:
        opens = brackets.count(b"[") + brackets.count(b"{")
        if self._depth + opens > MAX_JSON_DEPTH:
            steps = map(_STEP.__getitem__, brackets)
            if max(itertools.accumulate(steps, initial=self._depth)) > MAX_JSON_DEPTH:
                raise TraceError(
                    f"{self._path} nests JSON arrays or objects more than {MAX_JSON_DEPTH} "
                    f"levels deep, over the reader's limit of {MAX_JSON_DEPTH} levels (a "
                    "Chrome trace nests a few); the file is corrupt or not a trace"
                )
        self._depth += 2 * opens - len(brackets)


@contextmanager
def _json_stream(path: Path) -> Iterator[JsonBounds]:
    """The file's JSON bytes as a stream (inflated on the fly and kept within the module's
    bounds), with errors as TraceErrors."""
    compressed = read_head(path, 2) == GZIP_MAGIC
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as stream:
            yield JsonBounds(stream, path)
    except ijson.JSONError as exc:
        raise TraceError(
            f"{path} is not valid JSON ({_first_line(exc)}); the trace is truncated or corrupt, "
            "export it again"
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise TraceError(
            f"{path} is a truncated or corrupt gzip file ({_first_line(exc)}); copy or export "
            "it again"
        ) from None
    except OSError as exc:
        raise TraceError(f"cannot read {path} ({exc.strerror or exc}); check the file") from None


_EVENTS_END = ("traceEvents", "end_array", None)


def top_level(path: Path) -> tuple[str, dict[str, Any]]:
    """The events' ijson prefix and the top-level fields other than ``traceEvents``, read by
    a pass over the whole file that skips the events.

    A JSON object needs a ``traceEvents`` list (prefix ``traceEvents.item``); a top-level
    array is the format's array form (prefix ``item``, no fields).
    """
    with _json_stream(path) as stream:
        parser = ijson.parse(stream, use_float=True)
        first = next(parser, None)
        if first is not None and first[1] == "start_array":
            return "item", {}
        if first is None or first[1] != "start_map":
            raise TraceError(f"{path} is JSON but not a Chrome trace (not an object or array)")
        builder = ijson.ObjectBuilder()
        builder.event("start_map", None)
        has_events = False
        for prefix, event, value in parser:
            if prefix == "traceEvents" and event == "start_array":
                has_events = True
                collections.deque(iter(parser.__next__, _EVENTS_END), maxlen=0)
                builder.event("start_array", None)
                builder.event("end_array", None)
                continue
            builder.event(event, value)
    if not has_events:
        raise TraceError(f"{path} is JSON but not a Chrome trace (no traceEvents list)")
    fields = builder.value
    del fields["traceEvents"]
    return "traceEvents.item", fields


class _Ends:
    """A stream that passes reads through and keeps its first and last :data:`ENDS` bytes."""

    def __init__(self, stream: JsonBounds) -> None:
        self._stream = stream
        self.head = b""
        self.tail = b""

    def read(self, size: int = -1) -> bytes:
        """Read from the stream, remembering both ends."""
        data = self._stream.read(size)
        if len(self.head) < ENDS:
            self.head += data[: ENDS - len(self.head)]
        self.tail = (self.tail + data)[-ENDS:]
        return data


def _head_fields(head: bytes) -> dict[str, Any] | None:
    """Top-level fields before ``traceEvents`` in the stream's head, or None if not there."""
    builder = ijson.ObjectBuilder()
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head), use_float=True):
            if prefix == "traceEvents" and event == "start_array":
                builder.event("end_map", None)
                return builder.value
            builder.event(event, value)
    except ijson.JSONError:
        return None
    return None


def _tail_fields(tail: bytes) -> dict[str, Any] | None:
    """Top-level fields after the events' closing bracket in the stream's tail, or None.

    The closing bracket is the first ``]`` after which the rest is the end of one object
    (``}``, or ``, "key": value, ... }`` that parses on its own and has no ``traceEvents``,
    which would mean a bracket before the events).
    """
    position = tail.find(b"]")
    while position >= 0:
        rest = tail[position + 1 :].strip()
        if rest == b"}":
            return {}
        if rest.startswith(b","):
            try:
                fields = orjson.loads(b"{" + rest[1:])
            except orjson.JSONDecodeError:
                fields = None
            if isinstance(fields, dict) and "traceEvents" not in fields:
                return fields
        position = tail.find(b"]", position + 1)
    return None


Kernel = tuple[int, Any, Any, Any, int]
"""One kernel event as read: (index in the event list, name, ts, dur, device or -1)."""


def _kernel(index: int, event: dict[str, Any]) -> Kernel:
    args = event.get("args")
    device = args.get("device") if isinstance(args, dict) else None
    return (
        index,
        event.get("name"),
        event.get("ts"),
        event.get("dur"),
        device if type(device) is int else -1,
    )


def _events(path: Path) -> tuple[list[Kernel], dict[str, Any]]:
    """The kernel events, as compact tuples, and the top-level fields."""
    with _json_stream(path) as stream:
        array_form = stream.read(ENDS).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"["
    kernels: list[Kernel] = []
    with _json_stream(path) as stream:
        ends = _Ends(stream)
        prefix = "item" if array_form else "traceEvents.item"
        events = ijson.items(ends, prefix, use_float=True)
        for index, event in enumerate(events):
            if isinstance(event, dict) and event.get("ph") == "X":
                cat = event.get("cat")
                if isinstance(cat, str) and cat.lower() == "kernel":
                    kernels.append(_kernel(index, event))
    if array_form:
        return kernels, {}
    head, tail = _head_fields(ends.head), _tail_fields(ends.tail)
    if head is None or tail is None:
        return kernels, top_level(path)[1]
    return kernels, {**head, **tail}


def _gpu_table(doc: dict[str, Any]) -> dict[int, str]:
    table: dict[int, str] = {}
    props = doc.get("deviceProperties")
    if not isinstance(props, list):
        return table
    for position, entry in enumerate(props):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            key = entry.get("id", position)
            table[key if type(key) is int else position] = entry["name"]
    return table


def time_unit(display_unit: Any, ts: list[float], dur: list[float]) -> tuple[str, str]:
    """``("us" or "ns", the sentence saying why)`` for kernel ``ts``/``dur`` values."""
    if display_unit != "ns":
        hint = (
            f"displayTimeUnit {display_unit!r} only sets how viewers display time"
            if display_unit is not None
            else "no displayTimeUnit"
        )
        return "us", f"ts/dur read as microseconds, the Trace Event Format's unit ({hint})"
    fractional = any(type(v) is float and not v.is_integer() for v in (*ts, *dur))
    if ts and not fractional and min(ts) >= NS_PROOF_TS:
        return "ns", (
            "ts/dur read as nanoseconds: displayTimeUnit is 'ns' and every kernel ts is a "
            "whole number of nanoseconds since 1970 after the year 2000 (as microseconds it "
            "would be more than 30,000 years away)"
        )
    why = (
        "the values are fractional microseconds (nanosecond precision)"
        if fractional
        else "nothing in the values proves nanoseconds"
    )
    return "us", (
        "ts/dur read as microseconds, the Trace Event Format's unit: displayTimeUnit 'ns' is "
        f"a display hint and {why}"
    )


def _bad_event(path: Path, index: int, name: Any, key: str, value: Any) -> TraceError:
    return TraceError(
        f"{path}: kernel event traceEvents[{index}] ({name!r}) has {key} {value!r}; ts must "
        "be a number and dur a number that is not negative, the file is corrupt"
    )


def kineto_columns(path: Path) -> tuple[dict[str, list[Any]], str]:
    """Per-launch kernel columns of a Kineto trace as plain lists, and the unit note."""
    kernels, doc = _events(path)
    gpus = _gpu_table(doc)
    for index, name, ts, dur, _ in kernels:
        if not isinstance(name, str):
            raise _bad_event(path, index, name, "name", name)
        if not _is_number(ts):
            raise _bad_event(path, index, name, "ts", ts)
        if not _is_number(dur) or dur < 0:
            raise _bad_event(path, index, name, "dur", dur)
    if not kernels:
        raise TraceError(
            f"{path} has no kernels (no events with cat 'kernel'); profile with "
            "torch.profiler activities including ProfilerActivity.CUDA"
        )
    unit, note = time_unit(
        doc.get("displayTimeUnit"), [k[2] for k in kernels], [k[3] for k in kernels]
    )
    convert: Callable[[Any], int] = ns_to_ns if unit == "ns" else us_to_ns
    columns = new_kernel_columns()
    shorts: dict[str, str] = {}
    for _, name, ts, dur, device in kernels:
        start, duration = convert(ts), convert(dur)
        short = shorts.get(name)
        if short is None:
            short = shorts[name] = short_from_demangled(name)
        add_launch(columns, name, short, device, gpus.get(device), start, duration)
    return columns, note


def summarize_kineto(path: Path) -> TraceSummary:
    """Per-kernel statistics of a Kineto trace, without pandas."""
    columns, note = kineto_columns(path)
    return TraceSummary(aggregate_columns(columns), (note,))


def read_kineto(path: Path) -> pd.DataFrame:
    """One row per kernel execution, columns :data:`~.schema.KERNEL_COLUMNS`."""
    columns, note = kineto_columns(path)
    return kernel_frame(columns, (note,))


def sniff_kineto(probe: Probe) -> bool:
    """JSON text (plain or gzip-compressed): an object or an array."""
    return probe.text is not None and probe.text[:1] in ("{", "[")


READER = register_reader(
    TraceReader(
        "kineto",
        "PyTorch profiler (Kineto) Chrome trace, .json or .json.gz",
        read_kineto,
        summarize_kineto,
        sniff_kineto,
        priority=40,
    )
)
