"""Short kernel names from demangled and Itanium-mangled C++ names."""

from __future__ import annotations

import re

_MANGLED_PART = re.compile(r"(\d+)")


def short_from_demangled(name: str) -> str:
    """Base function name of a demangled kernel name: no return type, scope, templates, args.

    ``void at::native::vectorized_elementwise_kernel<4, F>(int, F)`` gives
    ``vectorized_elementwise_kernel``; a name without parameters is returned as is.
    """
    base = name.strip()
    if base.endswith(")"):
        cut = _matching_open(base, len(base) - 1, "(", ")")
        if cut > 0:
            base = base[:cut].rstrip()
    if base.endswith(">"):
        cut = _matching_open(base, len(base) - 1, "<", ">")
        if cut > 0:
            base = base[:cut].rstrip()
    base = base.rsplit("::", 1)[-1]
    parts = base.split()
    return parts[-1] if parts else name.strip()


def _matching_open(text: str, close_at: int, opener: str, closer: str) -> int:
    depth = 0
    for index in range(close_at, -1, -1):
        char = text[index]
        if char == closer:
            depth += 1
        elif char == opener:
            depth -= 1
            if depth == 0:
                return index
    return -1


def short_from_mangled(name: str) -> str:
    """Base function name of an Itanium-mangled name (``_Z...``); other names go through
    :func:`short_from_demangled`.

    ``_Z20kernelReduceAllPass1I...`` gives ``kernelReduceAllPass1``; for a nested name
    ``_ZN2at6native13reduce_kernelI...`` the last plain component, ``reduce_kernel``.
    """
    if not name.startswith("_Z"):
        return short_from_demangled(name)
    pos = 2
    nested = name.startswith("_ZN")
    if nested:
        pos = 3
        while pos < len(name) and name[pos] in "rVKRO":
            pos += 1
    last = ""
    while pos < len(name):
        match = _MANGLED_PART.match(name, pos)
        if match is None:
            break
        length = int(match.group(1))
        start = match.end()
        last = name[start : start + length]
        pos = start + length
        if not nested:
            break
    return last or name
