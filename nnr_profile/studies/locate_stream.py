"""The hash stream of `verify --locate`: one line per recorded tensor, compared line by line.

A run writes, in execution order, one tab-separated line per tensor: iteration, phase, module,
slot, digest, shape, dtype. Two runs of the same spec write the same keys in the same order,
so the first line whose digest differs is the first tensor that differs; every tensor recorded
before it (its inputs among them) was equal. No framework is imported here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

PHASES = {
    "init": "initial weights",
    "data": "batch",
    "forward_input": "forward (input)",
    "forward_output": "forward",
    "backward_output": "backward (output grad)",
    "backward_input": "backward (input grad)",
    "weight_grad": "backward ({slot} grad)",
    "update": "optimizer step ({slot})",
}
"""Phase code -> the words used in the located line."""


def digest_bytes(data: Any) -> str:
    """CRC-32 of a bytes-like object as 8 hex digits.

    Fast (about 4 GB/s here, three times SHA-1), which keeps `--locate` cheap; two different
    tensors share a digest with probability 2**-32, and a single flipped bit always shows.
    """
    return f"{zlib.crc32(memoryview(data).cast('B')):08x}"


@dataclass(frozen=True)
class Record:
    """One recorded tensor: where (iteration, phase, module, slot) and what (digest, shape)."""

    iteration: int
    phase: str
    module: str
    slot: str
    digest: str
    shape: str
    dtype: str

    @property
    def key(self) -> tuple[int, str, str, str, str, str]:
        """Everything but the digest: equal in two runs that executed the same code."""
        return (self.iteration, self.phase, self.module, self.slot, self.shape, self.dtype)

    def line(self) -> str:
        """The stream line (tab-separated, newline-terminated)."""
        fields = (self.phase, self.module, self.slot, self.digest, self.shape, self.dtype)
        return f"{self.iteration}\t" + "\t".join(fields) + "\n"

    @classmethod
    def parse(cls, line: str) -> Record:
        """The inverse of `line`."""
        iteration, phase, module, slot, digest, shape, dtype = line.rstrip("\n").split("\t")
        return cls(int(iteration), phase, module, slot, digest, shape, dtype)


class Captured(Exception):
    """Raised by the writer at the capture record: carries its tensor as an array."""

    def __init__(self, array: np.ndarray, record: Record) -> None:
        super().__init__(f"captured record {record.key}")
        self.array = array
        self.record = record


class StreamWriter:
    """Writes records to `handle`; with `capture` set, writes nothing and stops at that index.

    With a `reference` stream (an earlier run's), each record is compared as it is written, and
    the tensor of the first one that differs is kept (`mismatch`: its index and array).
    """

    def __init__(
        self,
        handle: TextIO | None,
        capture: int | None = None,
        reference: Iterator[Record] | None = None,
    ) -> None:
        self.handle = handle
        self.capture = capture
        self.reference = reference
        self.mismatch: tuple[int, np.ndarray] | None = None
        self.count = 0

    @property
    def capturing(self) -> bool:
        """True in a capture run (digests are not needed then)."""
        return self.capture is not None

    def write(self, record: Record, array: Callable[[], np.ndarray]) -> None:
        """Append `record`; in a capture run raise `Captured` with `array()` at its index."""
        if self.capture is not None:
            if self.count == self.capture:
                raise Captured(array(), record)
        elif self.handle is not None:
            self.handle.write(record.line())
        if self.reference is not None and next(self.reference, None) != record:
            self.mismatch = (self.count, array())
            self.reference = None
        self.count += 1

    def flush(self) -> None:
        """Flush the file (at iteration and pass boundaries, so the stream can be followed)."""
        if self.handle is not None:
            self.handle.flush()


def read_stream(path: Path) -> Iterator[Record]:
    """The records of a stream file, lazily."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield Record.parse(line)


@dataclass
class Difference:
    """The first line where two streams differ; `other` is None where the other stream ended."""

    index: int
    first: Record | None
    other: Record | None


def first_difference(first: Path, other: Path) -> Difference | None:
    """Compare two streams line by line, stopping at the first difference (None: identical)."""
    a, b = read_stream(first), read_stream(other)
    index = 0
    while True:
        left, right = next(a, None), next(b, None)
        if left is None and right is None:
            return None
        if left != right:
            return Difference(index, left, right)
        index += 1


def max_abs_diff(first: np.ndarray, other: np.ndarray) -> float | None:
    """Largest |first - other| (as float64); None when the shapes differ."""
    if first.shape != other.shape:
        return None
    if first.size == 0:
        return 0.0
    diff = np.abs(first.astype(np.float64) - other.astype(np.float64))
    return float(np.nanmax(diff)) if not np.isnan(diff).all() else float("nan")


def parent(module: str) -> str:
    """'layer1.0.conv1' -> 'layer1.0'; a top-level module -> 'model'."""
    head, _, _ = module.rpartition(".")
    return head or "model"


@dataclass
class Divergence:
    """Where two runs of one mode first part, in words and as fields (the `--json` form)."""

    iteration: int | None
    module: str | None
    phase: str | None
    slot: str | None
    record_index: int
    runs: tuple[int, int]
    summary: str
    max_abs_diff: float | None = None
    nondeterministic_ops: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The located line, e.g. 'iteration 0, fc, backward (weight grad): inputs equal, ...'."""
        line = self.summary
        if self.max_abs_diff is not None:
            line += f" (max abs diff {self.max_abs_diff:.3g})"
        if self.nondeterministic_ops:
            line += "; ops without a deterministic implementation here: " + ", ".join(
                self.nondeterministic_ops
            )
        return line

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["runs"] = list(self.runs)
        data["text"] = self.text()
        return data


def describe(difference: Difference, runs: tuple[int, int]) -> Divergence:
    """The located line for the first difference between run `runs[0]` and run `runs[1]`."""
    first, other = difference.first, difference.other
    if first is None or other is None:
        ended = runs[0] if first is None else runs[1]
        seen = other or first
        where = f"iteration {seen.iteration}, {seen.module}" if seen else "the start"
        return _divergence(
            seen,
            difference.index,
            runs,
            f"run {ended + 1} stopped recording at {where} (after {difference.index} "
            "records); see its error",
        )
    if first.key != other.key:
        return _divergence(
            first,
            difference.index,
            runs,
            f"iteration {first.iteration}: the runs executed different code at record "
            f"{difference.index} ({_where(first)} vs {_where(other)})",
        )
    return _divergence(first, difference.index, runs, _summary(first))


def _divergence(
    record: Record | None, index: int, runs: tuple[int, int], summary: str
) -> Divergence:
    """A `Divergence` at `record` (where it is, all None without one) with its `summary`."""
    if record is None:
        return Divergence(None, None, None, None, index, runs, summary)
    return Divergence(
        record.iteration, record.module, record.phase, record.slot, index, runs, summary
    )


def _where(record: Record) -> str:
    return f"{record.module} {record.phase} {record.slot} {record.shape} {record.dtype}"


def _summary(record: Record) -> str:
    phase = PHASES.get(record.phase, record.phase).format(slot=record.slot)
    at = f"iteration {record.iteration}"
    if record.phase == "init":
        return (
            f"before training, {record.module}: initial {record.slot} differs "
            "(initialisation is not seeded the same in both runs)"
        )
    if record.phase == "data":
        return f"before training: the batch's {record.slot} differ (data seed or position)"
    if record.phase == "forward_input":
        return (
            f"{at}, {parent(record.module)}, forward (its own code before {record.module}): "
            f"inputs equal, output differs ({record.module} {record.slot})"
        )
    if record.phase == "backward_output":
        return (
            f"{at}, {parent(record.module)}, backward (its own code, gradient w.r.t. "
            f"{record.module} {record.slot}): inputs equal, output differs"
        )
    return f"{at}, {record.module}, {phase}: inputs equal, output differs"
