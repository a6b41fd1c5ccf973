"""A progress bar with ETA for sweeps (rich), one tick per sweep cell."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nnr_profile.core.specs import TrialResult, TrialSpec


@contextmanager
def sweep_progress(total: int) -> Iterator[Callable[[TrialSpec, TrialResult | None], None]]:
    """Yield an `on_progress` callback that advances a bar over `total` sweep cells."""
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("trials", total=total)

        def advance(cell: TrialSpec, result: TrialResult | None) -> None:
            label = f"{cell.framework}/{cell.workload} {cell.mode.name} {cell.device_label}"
            if result is not None and result.status != "ok":
                progress.console.print(f"[red]{result.status}[/red] {label}: {result.error}")
            progress.update(task, advance=1, description=label)

        yield advance
