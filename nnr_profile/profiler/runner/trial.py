"""One trial in this process: apply mode and seeds, build, warm up, time N iterations.

A trial is normally run by `process.spawn_trial` in a fresh process (determinism must be
set before the framework initialises its GPU context): `run_trial` is the child task it
spawns. Errors come back as values: a trial that raises returns a TrialResult with status
"failed" and the error text.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nnr_profile.core.modes import Mode
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, TrialResult, TrialSpec
from nnr_profile.profiler.runner.child import child_task
from nnr_profile.profiler.runner.warm import TRIAL_START_ENV


class RunsInOneMode(Protocol):
    """What `prepare_run` reads from a spec (TrialSpec, ReplicaSpec, ...)."""

    framework: str
    workload: str
    mode: Mode
    gpu_index: int | None
    workload_args: Mapping[str, Any]


@dataclass
class PreparedRun:
    """The process set up for one run: workload, checked arguments, adapter, knobs, fingerprint."""

    workload: Any
    args: dict[str, Any]
    adapter: Any
    knobs_applied: dict[str, Any]
    environment: dict[str, Any]

    def session(self, spec: TrialSpec) -> Any:
        """The adapter's training session for `spec`: its mode, batch size, input and device."""
        return self.adapter.prepare(
            self.workload,
            self.args,
            spec.mode,
            spec.batch_size,
            self.workload.shape_for(spec.image_size),
            spec.device,
        )


def prepare_run(spec: RunsInOneMode, seed: int | None = None) -> PreparedRun:
    """The prologue every in-process runner shares, so one spec gets the same knobs everywhere.

    Takes the fingerprint, looks the workload up and validates its arguments (with the spec's
    `image_size`, if it has one), applies the mode's in-process knobs unless the workload sets
    none by design, and seeds the framework with `seed` (default: the spec's `seed`). The mode's
    environment variables are not set here: the process started with them
    (`child.child_environment`), before any framework was imported.
    """
    from nnr_profile.profiler.runner.environment import host_fingerprint
    from nnr_profile.workloads.adapter import get_adapter
    from nnr_profile.workloads.registry import get_workload

    workload = get_workload(spec.framework, spec.workload)
    environment = host_fingerprint(spec.gpu_index)
    args = workload.validate(spec.workload_args, getattr(spec, "image_size", None))
    adapter = get_adapter(spec.framework)
    if workload.applies_knobs:
        knobs = adapter.apply_mode(spec.mode)
    else:
        knobs = {"none": f"{spec.workload} sets no determinism knob by design"}
    knobs["recipe"] = workload.recipe_record(getattr(spec, "learning_rate", None))
    adapter.seed(getattr(spec, "seed", 0) if seed is None else seed)
    environment["framework"] = adapter.environment()
    return PreparedRun(workload, args, adapter, knobs, environment)


def run_capturing(body: Callable[[Any, Any], None], spec: Any, result: Any) -> Any:
    """`body(spec, result)` in this process: `result` ends ok, or failed with the error's text.

    `result` has status, error, environment (a dict, which gets the traceback) and wall_s.
    """
    began = time.perf_counter()
    try:
        body(spec, result)
        result.status = STATUS_OK
    except Exception as exc:
        result.status = STATUS_FAILED
        result.error = f"{type(exc).__name__}: {exc}"
        result.environment.setdefault("traceback", traceback.format_exc(limit=8))
    result.wall_s = time.perf_counter() - began
    return result


@child_task(decode=TrialSpec.from_dict)
def run_trial(spec: TrialSpec) -> TrialResult:
    """Run `spec` in this process; any exception becomes a failed result with its text."""
    return run_capturing(_run, spec, TrialResult(spec=spec, status=STATUS_FAILED))


def _run(spec: TrialSpec, result: TrialResult) -> None:
    from nnr_profile.profiler.collectors.base import ARTIFACT_DIR_ENV, artifact_base, get_collector
    from nnr_profile.profiler.collectors.device_sampler import (
        DeviceSampler,
        sample_records,
        summarize_samples,
    )
    from nnr_profile.profiler.collectors.nvml import EnergyMeter

    run = prepare_run(spec)
    result.environment = {**run.environment, "trial_start": os.environ.get(TRIAL_START_ENV, "cold")}
    result.knobs_applied = run.knobs_applied
    session = run.session(spec)
    for _ in range(spec.warmup):
        session.step()
    session.sync()
    injected = session.size_injected_work()
    if injected:
        result.knobs_applied["injected_work"] = injected

    collector = get_collector(spec.collector)
    timer = session.timer()
    energy = EnergyMeter(spec.gpu_index)
    sampler = DeviceSampler(spec.gpu_index)
    handles = []
    sampler.start()
    energy.start()
    with collector.timed_region(spec):
        for index in range(spec.iterations):
            with collector.iteration(index):
                timer.start()
                handles.append(session.step())
                timer.stop()
        session.sync()
    energy.stop()
    samples = sampler.stop()
    result.device = summarize_samples(samples) if sampler.available else {}
    result.device_samples = sample_records(samples)
    result.times_ms = timer.times_ms()
    result.energy_j = energy.energy_j
    result.losses = [session.loss_value(h) for h in handles]
    result.weights_hash = session.weights_hash()
    folder = Path(os.environ.get(ARTIFACT_DIR_ENV) or tempfile.gettempdir())
    collector.collect(result, artifact_base(spec, folder))
