"""The one measured sweep behind `run` and `gate`: plan, launch, precision on demand, clusters.

`plan_measurement` turns what the user asked for (models, modes, sizes, collectors, the
launcher's devices) into a `SweepSpec` with the notes worth printing; `measure` runs it through
its launcher, either once or repeat by repeat until the `--target-ci` precision is reached
(`studies.precision.run_to_precision`), submitting to a cluster and waiting for it where the
launcher is one. Both return values; printing is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.modes import parse_modes, same_as_default_note
from nnr_profile.core.paths import prepare_output_dir, prepare_output_file
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.collectors.base import parse_collectors
from nnr_profile.profiler.runner.launchers.base import Launcher, Progress
from nnr_profile.profiler.runner.launchers.cluster import ClusterLauncher, Submission
from nnr_profile.profiler.runner.pool import RunOutcome
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
from nnr_profile.studies.precision import PrecisionOutcome, PrecisionTarget, run_to_precision
from nnr_profile.workloads.selection import select_workloads

ProgressBar = Callable[[int], AbstractContextManager[Progress]]
"""`progress(total)`: a context manager yielding the `on_progress` callback over `total` cells."""


@dataclass(frozen=True)
class PlannedSweep:
    """A sweep ready to run: its spec, its trials per device (`plan_sweep`), notes for the user."""

    spec: SweepSpec
    plan: dict[int | None, list[TrialSpec]]
    notes: tuple[str, ...] = ()

    @property
    def cells(self) -> int:
        """How many trials the sweep plans."""
        return sum(map(len, self.plan.values()))


@dataclass
class Measurement:
    """What `measure` did: the trials' outcome, the precision rounds, a cluster submission."""

    outcome: RunOutcome = field(default_factory=RunOutcome)
    precision: PrecisionOutcome | None = None
    submission: Submission | None = None
    """Set when the launcher submitted to a cluster."""
    waited: bool = True
    """False when the submission was left running (`--no-wait`)."""


def plan_measurement(
    model: str,
    framework: str,
    modes: str,
    launcher: Launcher,
    collectors: str = "timing",
    **sizes: Any,
) -> PlannedSweep:
    """The sweep of `model` x `modes` on the launcher's devices; `sizes` are further SweepSpec
    fields (repeats, iterations, warmup, batch_size, image_size, seed, workload_args, ...)."""
    selection = select_workloads(model, framework)
    choice = launcher.devices()
    spec = SweepSpec(
        workloads=tuple(selection.workloads),
        modes=tuple(parse_modes(modes)),
        devices=choice.devices,
        collectors=tuple(parse_collectors(collectors)),
        **sizes,
    )
    frameworks = sorted({f for f, _ in spec.workloads})
    notes = [
        *selection.notes,
        choice.note,
        *(same_as_default_note(f, list(spec.modes)) for f in frameworks),
        *launcher.notes(spec),
    ]
    return PlannedSweep(spec, plan_sweep(spec), tuple(n for n in notes if n))


def check_target(target: PrecisionTarget | None, planned: PlannedSweep, launcher: Launcher) -> None:
    """A usage error when a precision target cannot go with this sweep or launcher."""
    if target is None:
        return
    if isinstance(launcher, ClusterLauncher) and not launcher.waits:
        raise ParameterError("target_ci", "needs the results, so it cannot go with {no_wait}")
    target.check(planned.spec)


def measure(
    planned: PlannedSweep,
    db: str | Path,
    launcher: Launcher,
    progress: ProgressBar,
    target: PrecisionTarget | None = None,
    force: bool = False,
    on_note: Callable[[str], None] | None = None,
    preset: str | None = None,
) -> Measurement:
    """Run the planned sweep into `db` through `launcher` (see the module); `force` re-runs the
    first round's cells; `on_note` receives the plan's notes once the request is known good,
    and a cluster submission's summary; `preset` (the
    preset that planned the sweep) is recorded for its cells (`Store.mark_cells`)."""
    check_target(target, planned, launcher)
    prepare_output_file(db, "db")
    if isinstance(launcher, ClusterLauncher) and launcher.config.results_dir:
        prepare_output_dir(launcher.config.results_dir, "results_dir")
    spec = planned.spec
    result = Measurement()
    note = on_note or (lambda _text: None)
    for line in planned.notes:
        note(line)

    def launch(part: SweepSpec) -> RunOutcome:
        plan = planned.plan if part is spec else plan_sweep(part)
        if preset is not None:
            mark_preset(plan, db, preset)
        total = sum(map(len, plan.values()))
        again = force and part is spec
        if isinstance(launcher, ClusterLauncher):
            result.submission = launcher.submit(part, db, force=again)
            note(result.submission.summary())
            with progress(total) as on_progress:
                return launcher.finish(result.submission, db, on_progress)
        with progress(total) as on_progress:
            return launcher.launch(part, db, force=again, on_progress=on_progress)

    if isinstance(launcher, ClusterLauncher) and not launcher.waits:
        if preset is not None:
            mark_preset(planned.plan, db, preset)
        result.submission = launcher.submit(spec, db, force=force)
        result.waited = False
        return result
    if target is None:
        result.outcome = launch(spec)
    else:
        result.precision = run_to_precision(spec, db, target, launch)
        result.outcome = result.precision.outcome
    return result


def mark_preset(plan: dict[int | None, list[TrialSpec]], db: str | Path, preset: str) -> None:
    """Record in the store at `db` that `preset` planned the cells of `plan`."""
    from nnr_profile.store.database import Store

    keys = [cell.cell_key for cells in plan.values() for cell in cells]
    with Store(db) as store:
        store.mark_cells("preset", keys, preset)
