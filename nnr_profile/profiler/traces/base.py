"""What a trace format is: a reader with its own `sniff`, and the table of registered formats.

A format is one module in :mod:`nnr_profile.profiler.traces.formats` that builds a
:class:`TraceReader` and passes it to :func:`register_reader` when imported; the registry
(:data:`READERS`, a :class:`~nnr_profile.core.registry.Registry`) imports every module of that
package the first time it is read, so a new format is one new file. ``sniff`` looks at a
:class:`Probe` (the file's name and first bytes, its text when it is text, its table names when
it is SQLite) and says whether the file is in this format; detection asks the readers in
``priority`` order.
"""

from __future__ import annotations

import pkgutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from nnr_profile.core.errors import TraceError
from nnr_profile.core.registry import Registry
from nnr_profile.profiler.traces import formats
from nnr_profile.profiler.traces.files import (
    GZIP_MAGIC,
    SQLITE_MAGIC,
    read_head,
    reading_sqlite,
    table_names,
)
from nnr_profile.profiler.traces.schema import TraceSummary

if TYPE_CHECKING:
    import pandas as pd

HEAD_BYTES = 65536
"""How much of a file detection reads."""


class Probe:
    """What detection may look at in one file; every view is computed once, on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name.lower()
        self.head = read_head(path, HEAD_BYTES)

    @property
    def is_gzip(self) -> bool:
        """The file is gzip-compressed."""
        return self.head.startswith(GZIP_MAGIC)

    @property
    def is_sqlite(self) -> bool:
        """The file is a SQLite database."""
        return self.head.startswith(SQLITE_MAGIC)

    @cached_property
    def text(self) -> str | None:
        """The head as text (decompressed first when gzip), or None for binary content."""
        raw = self.head
        if self.is_gzip:
            try:
                raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, 4096)
            except zlib.error as exc:
                raise TraceError(
                    f"{self.path} is a corrupt gzip file ({exc}); copy it again"
                ) from None
        if self.is_sqlite or b"\x00" in raw[:4096]:
            return None
        return raw.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")

    @cached_property
    def tables(self) -> frozenset[str]:
        """Table names when the file is a SQLite database, else empty."""
        if not self.is_sqlite:
            return frozenset()
        with reading_sqlite(self.path) as conn:
            return frozenset(table_names(conn))


@dataclass(frozen=True)
class TraceReader:
    """A trace format: how to recognise it, read its kernels and summarise them without pandas.

    ``read`` gives a per-launch frame (:data:`~.schema.KERNEL_COLUMNS`), or a summary frame
    (:data:`~.schema.SUMMARY_COLUMNS`) for formats that only hold per-kernel totals
    (``per_launch`` False); its ``attrs["notes"]`` hold what ``summarize`` puts in
    :attr:`TraceSummary.notes`. ``sniff`` answers for the formats' content; lower
    ``priority`` is asked first.
    """

    name: str
    description: str
    read: Callable[[Path], pd.DataFrame]
    summarize: Callable[[Path], TraceSummary]
    sniff: Callable[[Probe], bool]
    priority: int = 50
    per_launch: bool = True


FORMAT_MODULES = tuple(
    f"{formats.__name__}.{module.name}" for module in pkgutil.iter_modules(formats.__path__)
)
"""Every module of :mod:`nnr_profile.profiler.traces.formats`: each registers its reader."""

READERS: Registry[TraceReader] = Registry("trace format", modules=FORMAT_MODULES)
"""The readers by format name, filled by importing :data:`FORMAT_MODULES` on first use."""


def register_reader(reader: TraceReader) -> TraceReader:
    """Add a reader under ``reader.name`` (replacing one of the same name) and return it."""
    return READERS.register(reader.name, reader)


def readers_in_order() -> list[TraceReader]:
    """Registered readers in the order detection asks them."""
    return sorted(READERS.values(), key=lambda r: (r.priority, r.name))
