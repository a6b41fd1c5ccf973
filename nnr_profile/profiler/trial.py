"""One trial in this process: apply mode and seeds, build, warm up, time N iterations.

A trial is normally run by `launcher.launch_trial` in a fresh process (determinism must be
set before the framework initialises its GPU context); `python -m nnr_profile.profiler.trial
SPEC.json RESULT.json` is that process's entry point. Errors come back as values: a trial that
raises returns a TrialResult with status "failed" and the error text.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nnr_profile.profiler.determinism import Mode, mode_env

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_TIMEOUT = "timeout"


class DeviceModeSpec:
    """Shared by specs that run in one mode on one device (`gpu_index`, `mode` fields)."""

    gpu_index: int | None
    mode: Mode

    @property
    def device(self) -> str:
        """'cuda' when it runs on a GPU, else 'cpu'."""
        return "cpu" if self.gpu_index is None else "cuda"

    @property
    def device_label(self) -> str:
        """'cpu' or 'gpu<index>'."""
        return "cpu" if self.gpu_index is None else f"gpu{self.gpu_index}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["mode"] = self.mode.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """The inverse of `to_dict`."""
        return cls(**{**data, "mode": Mode.from_dict(data["mode"])})


@dataclass(frozen=True)
class TrialSpec(DeviceModeSpec):
    """What one trial runs: workload, framework, mode, device, sizes, iterations, seed, repeat.

    `gpu_index` is the NVML index of the GPU (None on the CPU); the trial process sees that GPU
    as cuda:0 through CUDA_VISIBLE_DEVICES. `collector` names the collector that observes the
    timed iterations besides `timing` (a kernel profiler runs in trials of its own, so timing
    trials stay unperturbed).
    """

    framework: str
    workload: str
    mode: Mode
    gpu_index: int | None = None
    batch_size: int = 128
    image_size: int | None = None
    warmup: int = 10
    iterations: int = 100
    seed: int = 0
    repeat: int = 0
    workload_args: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    collector: str = "timing"

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, not {self.iterations}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be 0 or more, not {self.warmup}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, not {self.batch_size}")

    @property
    def cell_key(self) -> str:
        """Identity of the sweep cell this trial fills (everything but the outcome)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:24]


@dataclass
class TrialResult:
    """Outcome of a trial: raw per-iteration times and losses, weights hash, environment, status.

    `kernels` holds the kernel table of a kernel collector (dicts with name, short_name, calls,
    total_ns over all timed iterations); `artifacts` the paths of files it kept (traces).
    """

    spec: TrialSpec
    status: str
    times_ms: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    weights_hash: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    knobs_applied: dict[str, Any] = field(default_factory=dict)
    energy_j: float | None = None
    error: str | None = None
    wall_s: float | None = None
    kernels: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        """The inverse of `to_dict`."""
        return cls(**{**data, "spec": TrialSpec.from_dict(data["spec"])})


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


def run_trial(spec: TrialSpec) -> TrialResult:
    """Run `spec` in this process; any exception becomes a failed result with its text."""
    return run_capturing(_run, spec, TrialResult(spec=spec, status=STATUS_FAILED))


def _run(spec: TrialSpec, result: TrialResult) -> None:
    from nnr_profile.profiler.collectors.base import ARTIFACT_DIR_ENV, artifact_base, get_collector
    from nnr_profile.profiler.collectors.nvml import EnergyMeter
    from nnr_profile.profiler.env import host_fingerprint
    from nnr_profile.workloads.adapter import get_adapter
    from nnr_profile.workloads.registry import get_workload

    for key, value in mode_env(spec.mode, spec.framework).items():
        os.environ.setdefault(key, value)
    result.environment = host_fingerprint(spec.gpu_index)
    workload = get_workload(spec.framework, spec.workload)
    args = workload.validate(spec.workload_args, spec.image_size)
    adapter = get_adapter(spec.framework)
    if workload.applies_knobs:
        result.knobs_applied = adapter.apply_mode(spec.mode)
    else:
        result.knobs_applied = {"none": f"{spec.workload} sets no determinism knob by design"}
    adapter.seed(spec.seed)
    result.environment["framework"] = adapter.environment()
    session = adapter.prepare(
        workload,
        args,
        spec.mode,
        spec.batch_size,
        workload.shape_for(spec.image_size),
        spec.device,
    )
    for _ in range(spec.warmup):
        session.step()
    session.sync()

    collector = get_collector(spec.collector)
    timer = session.timer()
    energy = EnergyMeter(spec.gpu_index)
    handles = []
    energy.start()
    with collector.timed_region(spec):
        for index in range(spec.iterations):
            with collector.iteration(index):
                timer.start()
                handles.append(session.step())
                timer.stop()
        session.sync()
    energy.stop()
    result.times_ms = timer.times_ms()
    result.energy_j = energy.energy_j
    result.losses = [session.loss_value(h) for h in handles]
    result.weights_hash = session.weights_hash()
    folder = Path(os.environ.get(ARTIFACT_DIR_ENV) or tempfile.gettempdir())
    collector.collect(result, artifact_base(spec, folder))


def main(argv: list[str]) -> int:
    """Process entry point: read a spec JSON file, run it, write the result JSON file."""
    from nnr_profile.profiler.child import write_result

    spec_path, result_path = argv
    with open(spec_path, encoding="utf-8") as handle:
        spec = TrialSpec.from_dict(json.load(handle))
    write_result(result_path, run_trial(spec).to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
