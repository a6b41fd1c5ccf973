"""The `nvml` collector: GPU identity, clocks and energy through nvidia-ml-py.

Without an NVIDIA driver every function answers "no GPU" cleanly (an empty list or None).
"""

from __future__ import annotations

from typing import Any

ARCHITECTURES: list[tuple[tuple[int, int], str]] = [
    ((12, 0), "Blackwell"),
    ((10, 0), "Blackwell"),
    ((9, 0), "Hopper"),
    ((8, 9), "Ada"),
    ((8, 0), "Ampere"),
    ((7, 5), "Turing"),
    ((7, 0), "Volta"),
    ((6, 0), "Pascal"),
    ((5, 0), "Maxwell"),
    ((3, 0), "Kepler"),
]
"""Lowest compute capability of each architecture, newest first."""


def arch_name(major: int, minor: int) -> str:
    """Architecture name for a compute capability, e.g. (8, 6) -> 'Ampere', (9, 0) -> 'Hopper'."""
    for (a_major, a_minor), name in ARCHITECTURES:
        if (major, minor) >= (a_major, a_minor):
            return name
    return "unknown"


def nvml_module():
    """The initialised pynvml module, or None when no NVIDIA driver is reachable."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_info(index: int) -> dict[str, Any] | None:
    """Identity of the GPU at NVML `index`: name, uuid, compute capability, arch, driver, memory."""
    nvml = nvml_module()
    if nvml is None:
        return None
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        info = {
            "index": index,
            "name": _text(nvml.nvmlDeviceGetName(handle)),
            "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
            "compute_capability": f"{major}.{minor}",
            "arch": arch_name(major, minor),
            "driver": _text(nvml.nvmlSystemGetDriverVersion()),
            "memory_total_mib": memory.total // (1024 * 1024),
        }
        try:
            info["sm_clock_max_mhz"] = nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)
            info["power_limit_w"] = nvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000
        except nvml.NVMLError:
            pass
        return info
    except nvml.NVMLError:
        return None


def list_gpus() -> list[dict[str, Any]]:
    """Every GPU NVML sees (empty without a driver or GPU)."""
    nvml = nvml_module()
    if nvml is None:
        return []
    try:
        count = nvml.nvmlDeviceGetCount()
    except nvml.NVMLError:
        return []
    return [info for i in range(count) if (info := gpu_info(i)) is not None]


class EnergyMeter:
    """Energy the GPU used between `start` and `stop`, in joules (None where unsupported)."""

    def __init__(self, index: int | None) -> None:
        self._nvml = nvml_module() if index is not None else None
        self._handle = None
        self._start_mj: int | None = None
        self.energy_j: float | None = None
        if self._nvml is not None:
            try:
                self._handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            except self._nvml.NVMLError:
                self._nvml = None

    def _read_mj(self) -> int | None:
        if self._nvml is None:
            return None
        try:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError:
            return None

    def start(self) -> None:
        """Read the energy counter."""
        self._start_mj = self._read_mj()

    def stop(self) -> None:
        """Read the counter again; `energy_j` is the difference."""
        end = self._read_mj()
        if self._start_mj is not None and end is not None:
            self.energy_j = (end - self._start_mj) / 1000.0
