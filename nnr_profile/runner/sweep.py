"""A sweep: workloads x modes x devices x repeats, run as trials, one worker per device.

Within each repeat the modes are interleaved (A B A B, not A A B B) so drift hits every mode
alike. Cells that already have a successful trial in the store are skipped unless `force`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from nnr_profile.collectors.base import get_collector
from nnr_profile.collectors.nvml import gpu_info, list_gpus
from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import Mode, same_as_default
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.runner.pool import RunOutcome, run_threads
from nnr_profile.runner.process import spawn_trial
from nnr_profile.workloads.registry import get_workload

CPU = None


@dataclass(frozen=True)
class DeviceChoice:
    """The devices a sweep runs on (NVML GPU indices, or `CPU`) and a note for the user."""

    devices: tuple[int | None, ...]
    note: str | None = None


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
            raise UsageError(f"--gpu {text!r}: use 'all', 'cpu' or GPU indices like 0,2")
        index = int(part)
        if index not in {g["index"] for g in gpus}:
            raise UsageError(f"--gpu {index} does not exist; GPUs seen: {seen}")
        if index not in indices:
            indices.append(index)
    if not indices:
        raise UsageError(f"--gpu {text!r}: use 'all', 'cpu' or GPU indices like 0,2")
    return DeviceChoice(tuple(indices))


@dataclass(frozen=True)
class SweepSpec:
    """The matrix to run and how to run each trial.

    `workloads` are (framework, name) pairs; `batch_size` None means each workload's default;
    `workload_args` go to every workload that declares the key.
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

    def __post_init__(self) -> None:
        for name, value, low in (
            ("--repeats", self.repeats, 1),
            ("--iterations", self.iterations, 1),
            ("--warmup", self.warmup, 0),
        ):
            if value < low:
                raise UsageError(f"{name} must be at least {low}, not {value}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise UsageError(f"--timeout must be positive, not {self.timeout_s}")
        if not self.workloads or not self.modes:
            raise UsageError("a sweep needs at least one model and one mode")


def plan_sweep(spec: SweepSpec) -> dict[int | None, list[TrialSpec]]:
    """Trials per device, in run order: repeat, workload, collector, then mode (interleaved).

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
        per_workload.append(
            ((framework, name), args, spec.batch_size or workload.default_batch_size)
        )
    unused = sorted(set(spec.workload_args) - used_keys)
    if unused:
        raise UsageError(
            f"--workload-arg {', '.join(unused)} is not an argument of any selected model; "
            "'nnr-profile list' shows each model's arguments"
        )
    gpus = [None if device is None else gpu_info(device) for device in spec.devices]
    for name in spec.collectors:
        for framework in {framework for (framework, _), _, _ in per_workload}:
            get_collector(name).check(framework, gpus)
    plan: dict[int | None, list[TrialSpec]] = {}
    for device in spec.devices:
        cells = plan.setdefault(device, [])
        for repeat in range(spec.repeats):
            for (framework, name), args, batch_size in per_workload:
                collectors = spec.collectors if repeat == 0 else ("timing",)
                for collector in collectors:
                    for mode in spec.modes:
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
) -> SweepOutcome:
    """Run every planned trial not yet done, one worker thread (and trial process) per device.

    `on_progress(cell, result)` is called after each cell; `result` is None for a skipped cell.
    """
    from nnr_profile.store.database import Store

    plan = plan_sweep(spec)
    artifact_dir = Path(db_path).resolve().parent / "traces"
    with Store(db_path) as store:
        done = set() if force else store.done_cells()
    outcome = SweepOutcome()

    def work(cells: list[TrialSpec]) -> None:
        with Store(db_path) as store:
            for cell in cells:
                if cell.cell_key in done:
                    outcome.skip()
                    if on_progress:
                        on_progress(cell, None)
                    continue
                result = spawn_trial(cell, spec.timeout_s, artifact_dir)
                store.record(result)
                outcome.add(result)
                if on_progress:
                    on_progress(cell, result)

    run_threads(partial(work, cells) for cells in plan.values())
    return outcome
