"""The trial's environment fingerprint: host facts plus the GPU's identity from NVML."""

from __future__ import annotations

from typing import Any

from nnr_profile.core.environment import host_facts
from nnr_profile.profiler.collectors.nvml import gpu_info


def host_fingerprint(gpu_index: int | None = None) -> dict[str, Any]:
    """Host-level facts; with `gpu_index`, that GPU's identity (name, arch, driver, memory)."""
    info = host_facts()
    if gpu_index is not None:
        info["gpu"] = gpu_info(gpu_index)
    return info
