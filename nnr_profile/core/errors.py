"""Errors that reach the user as one clear line (the CLI exits 2 on them)."""

from __future__ import annotations

from collections.abc import Callable
from string import Formatter


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


class ParameterError(UsageError):
    """A bad value for a named parameter; the CLI says the matching option instead.

    `problem` follows the parameter's name and may name other parameters as `{param}` fields;
    `values` fill the remaining fields, so quoted values never break the formatting::

        ParameterError("span", "must be a positive finite number, not {value!r}", value=nan)
        ParameterError("setting", "only applies together with {db}")
    """

    def __init__(self, param: str, problem: str, **values: object) -> None:
        self.param = param
        self.problem = problem
        self.values = values
        super().__init__(self.render(lambda name: name))

    def render(self, name_of: Callable[[str], str]) -> str:
        """The message with every parameter named by `name_of` (e.g. as its option flag)."""
        fields = {field for _, field, _, _ in Formatter().parse(self.problem) if field}
        names = {field: name_of(field) for field in fields if field not in self.values}
        return f"{name_of(self.param)} {self.problem.format(**names, **self.values)}"
