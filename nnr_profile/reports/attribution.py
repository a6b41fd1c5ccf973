"""Per-kernel attribution of a time overhead: which kernels were added, removed, got
slower or faster between two runs (e.g. ``default`` vs ``deterministic`` mode).

Pure functions on summary frames (``name``, ``calls``, ``total_ns``, as from
:func:`nnr_profile.profiler.traces.summarize_kernels`); no framework imports.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pandas as pd

ATTRIBUTION_COLUMNS = (
    "kernel",
    "base_calls",
    "other_calls",
    "base_ms_per_iter",
    "other_ms_per_iter",
    "delta_ms_per_iter",
    "change",
)

QUANTUM_MS = Fraction(1, 2**30)
"""Grid of the per-iteration columns: 2**-30 ms (about 0.93 fs). Every value is an exact
multiple, so float sums of these columns are exact (below 2**23 ms per iteration)."""

_LAUNCH_ID = re.compile(r"\s*\[\d+\]$")
_CHEVRONS = re.compile(r"\s*<<<[^<>]*>>>$")
_NVCC_ANON = re.compile(r"_GLOBAL__N__[0-9A-Za-z_]*?_[0-9a-f]{8}(?=::|\b)")
_UNNAMED = re.compile(r"<unnamed>")
_NSYS_LAMBDA = re.compile(r"\[lambda\(([^()]*)\) \(instance (\d+)\)\]")
_INT_CAST = re.compile(r"\((?:unsigned |signed )?(?:char|short|int|long|long long)\)(-?\d+)")
_BOOL_CAST = re.compile(r"\(bool\)([01])\b")
_INT_SUFFIX = re.compile(r"(?<![\w.])(-?\d+)(?:ull|ul|ll|u|l)\b", re.IGNORECASE)
_SPACE_AROUND = re.compile(r"\s*([<>(),*&\[\]])\s*")
_SPACES = re.compile(r"\s+")


def normalize_kernel_name(name: str) -> str:
    """A kernel name that matches the same kernel across runs, profilers and demanglers.

    Exactly these rewrites, in order (nothing else is changed):

    1. launch suffixes: a trailing ``[123]`` (nvprof's launch id) and a trailing
       ``<<<grid, block>>>`` launch configuration are removed;
    2. nvcc's per-build anonymous-namespace tag
       ``_GLOBAL__N__<digits>_tmpxft_<hex>_..._<8 hex>`` and the demangler spelling
       ``<unnamed>`` both become ``(anonymous namespace)``;
    3. nsys-style lambdas ``[lambda(int) (instance 2)]`` become ``{lambda(int)#2}``
       (the GCC/c++filt spelling);
    4. integer template literals lose casts and suffixes: ``(int)4`` and ``4ul`` become
       ``4``; ``(bool)1``/``(bool)0`` become ``true``/``false``;
    5. whitespace: runs collapse to one space, spaces next to ``< > ( ) , * & [ ]`` are
       removed, and the ends are stripped.

    Template arguments that choose the algorithm (tile sizes, vector widths, functor
    types) are kept on purpose: deterministic mode swaps exactly those kernels, and
    merging them would hide the overhead this module attributes.
    """
    text = _SPACES.sub(" ", name).strip()
    text = _LAUNCH_ID.sub("", text)
    text = _CHEVRONS.sub("", text)
    text = _NVCC_ANON.sub("(anonymous namespace)", text)
    text = _UNNAMED.sub("(anonymous namespace)", text)
    text = _NSYS_LAMBDA.sub(lambda m: "{lambda(" + m.group(1) + ")#" + m.group(2) + "}", text)
    text = _INT_CAST.sub(r"\1", text)
    text = _BOOL_CAST.sub(lambda m: "true" if m.group(1) == "1" else "false", text)
    text = _INT_SUFFIX.sub(r"\1", text)
    text = _SPACE_AROUND.sub(r"\1", text)
    return text.strip()


def _per_kernel(summary: pd.DataFrame) -> dict[str, tuple[int, int]]:
    missing = {"name", "calls", "total_ns"} - set(summary.columns)
    if missing:
        raise ValueError(f"kernel table lacks columns {sorted(missing)}")
    table: dict[str, tuple[int, int]] = {}
    for name, calls, total in zip(
        summary["name"], summary["calls"], summary["total_ns"], strict=True
    ):
        key = normalize_kernel_name(str(name))
        seen_calls, seen_total = table.get(key, (0, 0))
        table[key] = (seen_calls + int(calls), seen_total + int(total))
    return table


def _quantized_ms(totals_ns: list[int], iterations: int) -> list[float]:
    """Per-iteration ms on the QUANTUM_MS grid, largest-remainder rounded so that the
    values sum to the grid point nearest the exact total."""
    units = [Fraction(t, iterations * 1_000_000) / QUANTUM_MS for t in totals_ns]
    floors = [u.numerator // u.denominator for u in units]
    missing = round(sum(units, Fraction(0))) - sum(floors)
    order = sorted(range(len(units)), key=lambda i: (floors[i] - units[i], i))
    for index in order[:missing]:
        floors[index] += 1
    return [float(f * QUANTUM_MS) for f in floors]


def attribute_overhead(
    base_kernels: pd.DataFrame,
    other_kernels: pd.DataFrame,
    base_iterations: int,
    other_iterations: int,
) -> pd.DataFrame:
    """Per-kernel time per iteration of two runs and its change (:data:`ATTRIBUTION_COLUMNS`).

    Kernels are matched by :func:`normalize_kernel_name`. ``*_ms_per_iter`` is the
    kernel's total time divided by the run's iteration count, in milliseconds, rounded
    to the :data:`QUANTUM_MS` grid with largest-remainder rounding, so each column sums to
    the run's exact total per iteration within 2**-31 ms; ``delta_ms_per_iter = other -
    base`` row by row, so ``delta_ms_per_iter.sum()`` equals
    ``other_ms_per_iter.sum() - base_ms_per_iter.sum()`` exactly (no float rounding).
    ``change`` is ``added``/``removed`` (kernel on one side only), ``slower``/``faster``
    (per-iteration time up/down) or ``same``. Rows are sorted by ``|delta|`` descending.
    """
    if base_iterations <= 0 or other_iterations <= 0:
        raise ValueError("iteration counts must be positive")
    base, other = _per_kernel(base_kernels), _per_kernel(other_kernels)
    kernels = sorted(base.keys() | other.keys())
    base_col = _quantized_ms([base.get(k, (0, 0))[1] for k in kernels], base_iterations)
    other_col = _quantized_ms([other.get(k, (0, 0))[1] for k in kernels], other_iterations)
    rows = []
    for kernel, base_ms, other_ms in zip(kernels, base_col, other_col, strict=True):
        base_calls, other_calls = base.get(kernel, (0, 0))[0], other.get(kernel, (0, 0))[0]
        delta = other_ms - base_ms
        if kernel not in base:
            change = "added"
        elif kernel not in other:
            change = "removed"
        else:
            change = "slower" if delta > 0 else "faster" if delta < 0 else "same"
        rows.append((kernel, base_calls, other_calls, base_ms, other_ms, delta, change))
    rows.sort(key=lambda r: -abs(r[5]))
    frame = pd.DataFrame(rows, columns=list(ATTRIBUTION_COLUMNS))
    frame["base_calls"] = frame["base_calls"].astype("int64")
    frame["other_calls"] = frame["other_calls"].astype("int64")
    for column in ("base_ms_per_iter", "other_ms_per_iter", "delta_ms_per_iter"):
        frame[column] = frame[column].astype("float64")
    return frame
