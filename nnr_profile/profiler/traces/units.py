"""Exact conversion of printed times (decimal text with a unit) to integer nanoseconds."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

from nnr_profile.core.errors import TraceError

NS_PER_UNIT: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def text_to_ns(text: str, unit: str) -> int:
    """Decimal text in ``unit`` (s, ms, us, ns) to integer ns, rounding half to even.

    Uses :class:`decimal.Decimal`, so ``"215.481427"`` ms is exactly 215481427 ns; the
    result is exact whenever the text has no digits finer than a nanosecond.
    Raises ValueError for text that is not a number or an unknown unit.
    """
    factor = NS_PER_UNIT.get(unit)
    if factor is None:
        raise ValueError(f"unknown time unit {unit!r}")
    try:
        value = Decimal(text.strip().replace(",", "")) * factor
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def duration_ns(path: Path, kernel: str, column: str, text: str, unit: str) -> int:
    """A printed duration of one kernel in ns; not a number or negative is a TraceError that
    names the file, the kernel and the column."""
    try:
        value = text_to_ns(text, unit)
    except ValueError:
        raise TraceError(
            f"{path}: kernel {kernel!r} has {column} {text.strip()!r} ({unit}), not a number; "
            "the file is corrupt"
        ) from None
    if value < 0:
        raise TraceError(
            f"{path}: kernel {kernel!r} has a negative {column} ({text.strip()} {unit}); "
            "the file is corrupt"
        )
    return value
