"""`nnr-profile verify` as one library call: what was asked -> a `VerifySpec` -> the verdicts.

`plan_verify` resolves the model and builds the runs' `TrialSpec` (the workload's own checks
of its arguments and image size included); `run_verify` runs it bitwise (`studies.verify`) or
with every module's tensors recorded (`studies.locate`), and stores the ops found without a
deterministic implementation when a store is named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import Mode, parse_modes
from nnr_profile.core.paths import prepare_output_file
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.warm import warm_start_notes
from nnr_profile.studies.verify import RunRecord, VerifyReport, VerifySpec, verify, verify_probe
from nnr_profile.workloads.registry import get_workload
from nnr_profile.workloads.selection import select_workloads


@dataclass(frozen=True)
class PlannedVerify:
    """A verify run ready to go: its spec and the notes worth printing first."""

    spec: VerifySpec
    notes: tuple[str, ...] = ()


@dataclass
class VerifyOutcome:
    """The verdicts, and whether the ops found went into the store (None: no store named)."""

    report: VerifyReport
    ops_stored: bool | None = None
    runs: list[tuple[Mode, RunRecord]] = field(default_factory=list)


def plan_verify(
    model: str,
    framework: str,
    modes: str,
    runs: int,
    iterations: int,
    gpu_index: int | None,
    trial: dict[str, Any],
    trial_start: str = "warm",
    locate: bool = False,
) -> PlannedVerify:
    """The `VerifySpec` of one model; `trial` holds batch_size, image_size, seed, timeout_s
    and the parsed workload_args (as `cli.options.TrialOptions.sweep_fields` gives them);
    `trial_start` is how each run's process starts (warm where it can, or cold); `locate`
    (the runs will be recorded) is refused for a framework with no recorder."""
    selection = select_workloads(model, framework)
    if len(selection.workloads) != 1:
        raise UsageError("verify checks one model at a time: give one --model and --framework")
    fw, name = selection.workloads[0]
    if locate:
        from nnr_profile.studies.locate import check_locatable

        check_locatable(fw)
    workload = get_workload(fw, name)
    parsed = parse_modes(modes)
    batch_size = trial["batch_size"] or workload.default_batch_size
    trial_spec = TrialSpec(
        framework=fw,
        workload=name,
        mode=parsed[0],
        gpu_index=gpu_index,
        batch_size=batch_size,
        image_size=trial["image_size"],
        warmup=0,
        iterations=iterations,
        seed=trial["seed"],
        workload_args=workload.validate(trial["workload_args"], trial["image_size"]),
    )
    spec = VerifySpec(trial_spec, tuple(parsed), runs, trial["timeout_s"], trial_start)
    notes = (*selection.notes, *warm_start_notes([fw], trial_start))
    return PlannedVerify(spec, notes)


def run_verify(
    spec: VerifySpec,
    locate: bool = False,
    db: str | Path | None = None,
    on_run: Callable[[Mode, int, RunRecord], None] | None = None,
) -> VerifyOutcome:
    """Run `spec` (recorded and located with `locate`); with `db`, store the ops probe."""
    from nnr_profile.studies.locate import locate as located
    from nnr_profile.studies.ops import record_probe

    if db is not None:
        prepare_output_file(db, "db")
    finished: list[tuple[Mode, RunRecord]] = []

    def record(mode: Mode, run: int, result: RunRecord) -> None:
        finished.append((mode, result))
        if on_run is not None:
            on_run(mode, run, result)

    report = (located if locate else verify)(spec, on_run=record)
    stored = None if db is None else record_probe(verify_probe(spec, finished), db)
    return VerifyOutcome(report, stored, finished)
