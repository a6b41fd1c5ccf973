"""How `nnr-profile` ends when reading or writing fails: one line on standard error, exit 74.

74 is ``EX_IOERR`` of sysexits.h: standard output on a full device or a closed pipe, a full disk
under an output file. A failed standard stream is pointed at the null device, so nothing writes
to it again (the interpreter's own flush at exit included).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Any, NoReturn

import click

EXIT_IO_ERROR = 74
"""The exit status of a failed read or write (``EX_IOERR``)."""


def silence(stream: Any) -> None:
    """Point a failed standard stream at the null device, so nothing writes to it again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    with contextlib.suppress(OSError, ValueError):
        stream.flush()


def failed_stream(exc: OSError) -> Any:
    """The standard stream whose write raised ``exc`` (the innermost frame writes to it)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    values = tb.tb_frame.f_locals.values() if tb is not None else ()
    for stream in (sys.stdout, sys.stderr):
        if any(v is stream or v is getattr(stream, "buffer", stream) for v in values):
            return stream
    return None


def io_failed(exc: OSError) -> NoReturn:
    """One line for a failed read or write, then exit 74."""
    stream = failed_stream(exc)
    reason = exc.strerror or str(exc) or type(exc).__name__
    if stream is not None:
        name = "standard output" if stream is sys.stdout else "standard error"
        silence(stream)
        give_up(f"cannot write {name} ({reason})")
    if exc.filename:
        give_up(f"{reason}: {exc.filename}")
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    give_up(f"cannot write an output file ({reason})" if full else f"I/O error ({reason})")


def give_up(what: str) -> NoReturn:
    """Say ``what`` on standard error while it still works, and exit 74."""
    try:
        click.echo(f"nnr-profile: error: {what}", err=True)
    except (OSError, ValueError):
        silence(sys.stderr)
    sys.exit(EXIT_IO_ERROR)
