"""Recognising a trace format from the file's content (the extension is only a hint).

Each registered reader's ``sniff`` is asked in ``priority`` order; the first that claims the
file names its format. When none does, the message says what the file looks like instead.
"""

from __future__ import annotations

from pathlib import Path

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.base import READERS, Probe, readers_in_order
from nnr_profile.profiler.traces.files import check_file


def supported() -> str:
    """The registered formats, in words, for messages."""
    return "; ".join(f"{r.name}: {r.description}" for r in readers_in_order())


def probe_file(path: str | Path) -> Probe:
    """A :class:`Probe` of a readable, non-empty file."""
    probe = Probe(check_file(path))
    if not probe.head:
        raise TraceError(f"{probe.path} is empty; the trace was not written, profile again")
    return probe


def sniff_format(probe: Probe) -> str | None:
    """Name of the first reader whose ``sniff`` claims the file, or None."""
    for reader in readers_in_order():
        if reader.sniff(probe):
            return reader.name
    return None


def looks_like(probe: Probe) -> str:
    """What an unclaimed file looks like, as the end of a sentence."""
    suffix = probe.path.suffix.lower()
    if probe.is_sqlite:
        return (
            "a SQLite database but neither an Nsight Systems export nor an nvprof database; "
            "pass a file from 'nsys export --type sqlite' or 'nvprof -o'"
        )
    if probe.is_gzip:
        return "gzip-compressed but not JSON; expected a Kineto .json.gz"
    if suffix in (".nsys-rep", ".qdrep"):
        return f"an Nsight Systems report; export it first: nsys export --type sqlite {probe.path}"
    if suffix == ".pb":
        return "a protobuf file; TensorFlow profiler files must be named *.xplane.pb"
    return f"not a trace format nnr-profile can read; supported: {supported()}"


def detect_format(path: str | Path) -> str:
    """Name of the reader for a trace file (see :data:`~.base.READERS`), judged by content."""
    probe = probe_file(path)
    name = sniff_format(probe)
    if name is None:
        raise TraceError(f"{probe.path} is {looks_like(probe)}")
    return name


def check_format(path: str | Path, name: str) -> None:
    """Refuse a file that is clearly another format than ``name``, saying which it looks like.

    A file no reader claims is left to the reader of ``name``, whose errors are specific.
    """
    probe = probe_file(path)
    found = sniff_format(probe)
    if found is None or found == name:
        return
    wanted, other = READERS[name], READERS[found]
    raise TraceError(
        f"{probe.path} is not in the {name} format ({wanted.description}): it looks like {found} "
        f"({other.description}); read it as {found}, or let the format be detected"
    )
