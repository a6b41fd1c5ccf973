"""Errors that reach the user as one clear line (the CLI exits 2 on them)."""


class NnrError(Exception):
    """A problem the user can fix: bad input, missing tool, unreadable file.

    The message must say what happened and what to do; the CLI prints it as one line.
    """


class UsageError(NnrError):
    """A command-line value that cannot be used (unknown model, bad --gpu, ...)."""


class MissingDependencyError(NnrError):
    """An optional framework or tool is not installed; the message names the install command."""


class TraceError(NnrError):
    """A trace file that cannot be read: missing, truncated, corrupt, unknown format, no kernels."""
