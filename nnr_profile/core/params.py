"""Ranges of numeric parameters: one check and one wording for the library, CLI and workloads.

NaN and infinity are never in a range: a NaN timeout would switch the timeout off, a NaN
learning rate reach the store as NULL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nnr_profile.core.errors import ParameterError

SEED_MAX = 2**32 - 1
"""Seeds become PYTHONHASHSEED and NumPy seeds, which take 0 to 2**32 - 1."""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """Finite numbers (whole ones if `integer`) between optional bounds, open or closed."""

    integer: bool = False
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def describe(self) -> str:
        """In words, e.g. 'a whole number of at least 1' or 'a whole number from 0 to 9'."""
        kind = "a whole number" if self.integer else "a finite number"
        low = None if self.min is None else _number(self.min)
        high = None if self.max is None else _number(self.max)
        if low is not None and high is not None and not (self.min_open or self.max_open):
            return f"{kind} from {low} to {high}"
        bounds = []
        if low is not None:
            bounds.append(f"above {low}" if self.min_open else f"of at least {low}")
        if high is not None:
            bounds.append(f"below {high}" if self.max_open else f"of at most {high}")
        return " ".join([kind, " and ".join(bounds)]).strip()

    def contains(self, value: Any) -> bool:
        """True for a finite int or float (an int where `integer`) within the bounds."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(value) or (self.integer and not isinstance(value, int)):
            return False
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        return self.max is None or (value < self.max if self.max_open else value <= self.max)


COUNT = Range(integer=True, min=1)
NON_NEGATIVE = Range(integer=True, min=0)
POSITIVE = Range(min=0, min_open=True)
SEED = Range(integer=True, min=0, max=SEED_MAX)


def require(param: str, value: Any, allowed: Range, optional: bool = False) -> None:
    """A ParameterError naming `param` unless `value` is in `allowed` (or None if `optional`)."""
    if optional and value is None:
        return
    if not allowed.contains(value):
        raise ParameterError(
            param, "must be {allowed}, not {value!r}", allowed=allowed.describe(), value=value
        )


def require_seed(param: str, seed: Any, count: int = 1) -> None:
    """`seed` and the `count - 1` seeds after it (one per replica) must all be valid seeds."""
    allowed = Range(integer=True, min=0, max=SEED_MAX - max(count - 1, 0))
    if not allowed.contains(seed):
        raise ParameterError(
            param,
            "must be {allowed}{why}, not {value!r}",
            allowed=allowed.describe(),
            why=f" (the {count} replicas use it and the seeds after it)" if count > 1 else "",
            value=seed,
        )
