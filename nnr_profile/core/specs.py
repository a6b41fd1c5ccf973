"""What a trial runs and what it gives back: TrialSpec, TrialResult and the trial status."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from nnr_profile.core.modes import Mode
from nnr_profile.core.params import COUNT, NON_NEGATIVE, require, require_seed


class Status(str, Enum):
    """How a trial ended; stored as its value ('ok', 'failed', 'timeout')."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"


STATUS_OK = Status.OK.value
STATUS_FAILED = Status.FAILED.value
STATUS_TIMEOUT = Status.TIMEOUT.value


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
        require("iterations", self.iterations, COUNT)
        require("warmup", self.warmup, NON_NEGATIVE)
        require("batch_size", self.batch_size, COUNT)
        require("image_size", self.image_size, COUNT, optional=True)
        require("repeat", self.repeat, NON_NEGATIVE)
        require_seed("seed", self.seed)

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
    `device` is the summary of the NVML samples taken during the timed iterations (keys of
    `collectors.device_sampler.summarize_samples`; {} or None values: not measured) and
    `device_samples` those samples (dicts with t_s, sm_clock_mhz, temperature_c, power_w,
    throttle_reasons).
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
    device: dict[str, Any] = field(default_factory=dict)
    device_samples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        """The inverse of `to_dict`."""
        return cls(**{**data, "spec": TrialSpec.from_dict(data["spec"])})


@dataclass
class OpProbe:
    """Which ops had no deterministic implementation when `spec` ran with determinism on.

    `spec` is the run (workload, mode, device, sizes); `ops` the op names found; `complete`
    False where the run stopped at the first such op (TensorFlow raises), so later ops may be
    missing; `source` the command that probed ('ops' or 'verify'); `environment` the run's
    fingerprint (framework version, GPU).
    """

    spec: TrialSpec
    status: str
    ops: list[str] = field(default_factory=list)
    complete: bool = True
    source: str = "ops"
    error: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
