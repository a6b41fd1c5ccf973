"""`nnr-profile trace`: summarise and compare GPU kernel traces.

Thin layer: parse options, call :mod:`nnr_profile.profiler.traces`, print. The commands
use the pandas-free summary path, so they never import pandas, torch or tensorflow.
"""

from __future__ import annotations

import click

from nnr_profile.profiler.traces import DIFF_COLUMNS, READERS, SUMMARY_COLUMNS
from nnr_profile.profiler.traces.render import OUTPUT_FORMATS

_output = click.option(
    "--format",
    "output_format",
    type=click.Choice(OUTPUT_FORMATS),
    default="markdown",
    show_default=True,
    help="Output table format.",
)
_trace_format = click.option(
    "--trace-format",
    type=click.Choice(sorted(READERS)),
    default=None,
    help="Input format; detected from the file's content when omitted.",
)
_path = click.Path(dir_okay=True, path_type=str)


@click.group("trace")
def trace() -> None:
    """Read GPU kernel traces (Nsight Systems, nvprof, nsys stats, PyTorch profiler).

    \b
    Example:
      nnr-profile trace summarize run.sqlite
      nnr-profile trace diff default.json.gz deterministic.json.gz
    """


@trace.command("summarize")
@click.argument("file", type=_path)
@_output
@_trace_format
def summarize(file: str, output_format: str, trace_format: str | None) -> None:
    """Print one row per kernel name: calls, total/mean/min/max time in nanoseconds.

    Notes on how the file was read (e.g. the time unit of a Kineto trace, nvprof sections
    skipped) follow a Markdown table, or go to stderr with --format csv/json.

    \b
    Example:
      nnr-profile trace summarize report1.sqlite --format csv > kernels.csv
      nnr-profile trace summarize trace.json.gz --trace-format kineto
    """
    from nnr_profile.profiler.traces import trace_summary
    from nnr_profile.profiler.traces.render import render

    summary = trace_summary(file, trace_format)
    rows = [s.as_row() for s in summary.stats]
    click.echo(render(rows, SUMMARY_COLUMNS, output_format), nl=False)
    _notes([(file, summary.notes)], output_format)


@trace.command("diff")
@click.argument("base", type=_path)
@click.argument("other", type=_path)
@_output
@_trace_format
def diff(base: str, other: str, output_format: str, trace_format: str | None) -> None:
    """Compare kernels of OTHER against BASE: calls, total ns, delta ns, change.

    delta_ns = other_total_ns - base_total_ns per kernel; the deltas sum exactly to the
    difference of the two traces' total kernel time.

    \b
    Example:
      nnr-profile trace diff default.sqlite deterministic.sqlite --format markdown
    """
    from nnr_profile.profiler.traces import diff_rows, trace_summary
    from nnr_profile.profiler.traces.render import render

    left, right = trace_summary(base, trace_format), trace_summary(other, trace_format)
    rows = diff_rows(left.stats, right.stats)
    click.echo(render(rows, DIFF_COLUMNS, output_format), nl=False)
    _notes([(base, left.notes), (other, right.notes)], output_format)


def _notes(notes: list[tuple[str, tuple[str, ...]]], output_format: str) -> None:
    """How each file was read: after a Markdown table, on stderr beside CSV or JSON."""
    from nnr_profile.profiler.traces.render import render_notes

    lines = [f"{file}: {note}" for file, file_notes in notes for note in file_notes]
    if output_format == "markdown":
        click.echo(render_notes(lines, output_format), nl=False)
    else:
        for line in lines:
            click.echo(f"note: {line}", err=True)
