"""A sweep: workloads x modes x devices x repeats, run as trials, one worker per device.

Within each repeat the modes are interleaved (A B A B, not A A B B) so drift hits every mode
alike. Cells that already have a successful trial in the store are skipped unless `force`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import ParameterError, UsageError
from nnr_profile.core.modes import Mode, same_as_default
from nnr_profile.core.params import COUNT, NON_NEGATIVE, POSITIVE, Range, require, require_seed
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.profiler.collectors.base import get_collector
from nnr_profile.profiler.collectors.nvml import gpu_info, list_gpus
from nnr_profile.profiler.runner.pool import Lane, RunOutcome, lane_queue, run_pool, skip_done
from nnr_profile.profiler.runner.process import spawn_trial
from nnr_profile.profiler.runner.warm import warm_start_notes
from nnr_profile.workloads.checks import check_batches
from nnr_profile.workloads.registry import get_workload

CPU = None


@dataclass(frozen=True)
class DeviceChoice:
    """The devices a sweep runs on (NVML GPU indices, or `CPU`) and a note for the user."""

    devices: tuple[int | None, ...]
    note: str | None = None


_GPU_FORMS = "{value!r}: use 'all', 'cpu' or GPU indices like 0,2"


def resolve_devices(text: str, gpus: Sequence[dict[str, Any]] | None = None) -> DeviceChoice:
    """Parse --gpu: 'all', 'cpu', or comma-separated NVML indices checked against the GPUs seen."""
    gpus = list_gpus() if gpus is None else list(gpus)
    text = text.strip().lower()
    if text == "cpu":
        return DeviceChoice((CPU,))
    if text == "all":
        if not gpus:
            return DeviceChoice((CPU,), "no NVIDIA GPU found: running on the CPU")
        return DeviceChoice(tuple(g["index"] for g in gpus))
    seen = ", ".join(f"{g['index']} ({g['name']})" for g in gpus) or "none"
    indices: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit():
            raise ParameterError("gpu", _GPU_FORMS, value=text)
        index = int(part)
        if index not in {g["index"] for g in gpus}:
            raise ParameterError(
                "gpu", "{index} does not exist; GPUs seen: {seen}", index=index, seen=seen
            )
        if index not in indices:
            indices.append(index)
    if not indices:
        raise ParameterError("gpu", _GPU_FORMS, value=text)
    return DeviceChoice(tuple(indices))


@dataclass(frozen=True)
class SweepSpec:
    """The matrix to run and how to run each trial.

    `workloads` are (framework, name) pairs; `batch_size` None means each workload's default;
    `workload_args` go to every workload that declares the key. Repeats `first_repeat` to
    `repeats - 1` are planned (a later part of a sweep starts above 0).
    """

    workloads: tuple[tuple[str, str], ...]
    modes: tuple[Mode, ...]
    devices: tuple[int | None, ...] = (CPU,)
    repeats: int = 3
    iterations: int = 100
    warmup: int = 10
    batch_size: int | None = None
    image_size: int | None = None
    seed: int = 0
    workload_args: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = 1800.0
    collectors: tuple[str, ...] = ("timing",)
    first_repeat: int = 0

    def __post_init__(self) -> None:
        require("repeats", self.repeats, COUNT)
        require("first_repeat", self.first_repeat, Range(integer=True, min=0, max=self.repeats - 1))
        require("iterations", self.iterations, COUNT)
        require("warmup", self.warmup, NON_NEGATIVE)
        require("batch_size", self.batch_size, COUNT, optional=True)
        require("image_size", self.image_size, COUNT, optional=True)
        require("timeout_s", self.timeout_s, POSITIVE, optional=True)
        require_seed("seed", self.seed)
        if not self.workloads or not self.modes:
            raise UsageError("a sweep needs at least one model and one mode")


def plan_sweep(spec: SweepSpec) -> dict[int | None, list[TrialSpec]]:
    """Trials per device, in run order: repeat, workload, collector, then mode (interleaved).

    The mode order is reversed in every odd repeat (A B, B A, A B, ...), so a steady drift
    over the sweep favours neither side of a paired comparison over an even number of repeats.

    Kernel collectors (anything but `timing`) run once per workload, mode and device, in
    repeat 0, in trials of their own.
    """
    host = socket.gethostname()
    per_workload: list[tuple[tuple[str, str], dict[str, Any], int]] = []
    used_keys: set[str] = set()
    for framework, name in spec.workloads:
        workload = get_workload(framework, name)
        own = {k: v for k, v in spec.workload_args.items() if k in workload.params}
        used_keys |= set(own)
        args = workload.validate(own, spec.image_size)
        batch_size = spec.batch_size or workload.default_batch_size
        check_batches(workload, args, batch_size)
        per_workload.append(((framework, name), args, batch_size))
    unused = sorted(set(spec.workload_args) - used_keys)
    if unused:
        raise ParameterError(
            "workload_args",
            "{keys} is not an argument of any selected model; "
            "'nnr-profile list' shows each model's arguments",
            keys=", ".join(unused),
        )
    gpus = [None if device is None else gpu_info(device) for device in spec.devices]
    for name in spec.collectors:
        for framework in {framework for (framework, _), _, _ in per_workload}:
            get_collector(name).check(framework, gpus)
    plan: dict[int | None, list[TrialSpec]] = {}
    for device in spec.devices:
        cells = plan.setdefault(device, [])
        for repeat in range(spec.first_repeat, spec.repeats):
            for (framework, name), args, batch_size in per_workload:
                collectors = spec.collectors if repeat == 0 else ("timing",)
                order = spec.modes if repeat % 2 == 0 else spec.modes[::-1]
                for collector in collectors:
                    for mode in order:
                        if same_as_default(mode, framework):
                            continue  # e.g. tf `fast`: it would measure `default` again
                        cells.append(
                            TrialSpec(
                                framework=framework,
                                workload=name,
                                mode=mode,
                                gpu_index=device,
                                batch_size=batch_size,
                                image_size=spec.image_size,
                                warmup=spec.warmup,
                                iterations=spec.iterations,
                                seed=spec.seed,
                                repeat=repeat,
                                workload_args=args,
                                host=host,
                                collector=collector,
                            )
                        )
    return plan


SweepOutcome = RunOutcome
"""What a sweep did: counts and the results of trials that did not succeed."""


def run_sweep(
    spec: SweepSpec,
    db_path: str | Path,
    force: bool = False,
    on_progress: Callable[[TrialSpec, TrialResult | None], None] | None = None,
    plan: dict[int | None, list[TrialSpec]] | None = None,
    start: str = "warm",
) -> SweepOutcome:
    """Run every planned trial not yet done, one worker thread (and trial process) per device.

    `plan` (default: `plan_sweep(spec)`) may be a part of the plan, e.g. further repeats.
    `start` is how trials start: `warm` where the framework can (see `spawn_trial`), or `cold`.
    `on_progress(cell, result)` is called after each cell; `result` is None for a skipped cell.
    """
    from nnr_profile.store.database import Store

    plan = plan_sweep(spec) if plan is None else plan
    artifact_dir = Path(db_path).resolve().parent / "traces"
    with Store(db_path) as store:
        done = set() if force else store.done_cells()
    outcome = SweepOutcome()
    key = attrgetter("cell_key")
    lanes = [
        Lane(device, lane_queue(skip_done(cells, done, key, outcome, on_progress)))
        for device, cells in plan.items()
    ]

    def run_one(cell: TrialSpec, _device: int | None) -> TrialResult:
        return spawn_trial(cell, spec.timeout_s, artifact_dir, start)

    return run_pool(
        lanes, run_one, db_path, lambda store, result: store.record(result), outcome, on_progress
    )


def start_notes(spec: SweepSpec, start: str) -> list[str]:
    """How `spec`'s trials start with `--trial-start start`: a line per framework, and one for
    collectors that start the trial's process themselves (nsys, nvprof: always cold)."""
    from nnr_profile.profiler.collectors.base import Collector

    notes = warm_start_notes(sorted({framework for framework, _ in spec.workloads}), start)
    base = Collector.command_prefix
    wrapping = [c for c in spec.collectors if type(get_collector(c)).command_prefix is not base]
    if wrapping and start == "warm":
        notes.append(
            f"trial starts: cold for {', '.join(wrapping)} trials (the profiler starts them)"
        )
    return notes
