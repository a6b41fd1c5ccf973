"""Exact conversion of printed times (decimal text with a unit) to integer nanoseconds."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

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
