"""The bounds every trace reader keeps, so a hostile or broken file is refused in linear time.

A real profiler never comes near them: Kineto traces nest 5 to 7 levels, and the longest
kernel name in the test fixtures is under 6,000 characters. A file past a bound is refused
with a :class:`~nnr_profile.core.errors.TraceError` that names the bound (the CLI exits 2),
before the reader holds or scans more than the bound allows: without them, one JSON value
nested 100,000 levels grew the parser to 22 GB, and one 200 MB name took minutes, since
the JSON parser rescans a token that spans its read buffers.
"""

from __future__ import annotations

from pathlib import Path

from nnr_profile.core.errors import TraceError

MAX_JSON_DEPTH = 64
"""Deepest nesting of JSON arrays and objects a Kineto trace may have (real ones: up to 7)."""

MAX_FIELD_BYTES = 131_072
"""Longest single value: a kernel or GPU name, any JSON string, key or number, one CSV field
or one SQLite string (bytes; characters in CSV text). It is the csv module's default field
limit, so every reader answers the same."""

MAX_LINE_CHARS = 4 * MAX_FIELD_BYTES
"""Longest line of a CSV trace (its fields together), in characters."""


def too_long(path: Path, what: str, size: int | None, limit: int, unit: str) -> TraceError:
    """The refusal of one value past its bound; ``size`` None when only 'more than' is known."""
    found = f"more than {limit:,}" if size is None else f"{size:,}"
    return TraceError(
        f"{path} has {what} of {found} {unit}, over the reader's limit of {limit:,} {unit}; "
        "no profiler writes that, the file is corrupt or not a trace"
    )
