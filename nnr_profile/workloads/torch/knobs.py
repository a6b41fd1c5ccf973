"""PyTorch's determinism knobs: the environment they need and the code that applies them.

`mode_environment` is what the trial's process must start with (cuBLAS reads
CUBLAS_WORKSPACE_CONFIG when it creates its handle, so it must be in place before the first
CUDA call); the runner puts it into the child's environment. `apply_torch_mode` sets the
in-process flags before the first tensor is created.
"""

from __future__ import annotations

import os

from nnr_profile.core.modes import Mode

CUBLAS_WORKSPACE_CONFIG = ":4096:8"
"""cuBLAS's deterministic workspace setting (one 4 MiB buffer per stream, eight of them)."""

KNOB_SETTINGS: dict[str, str] = {
    "cublas_workspace": f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE_CONFIG}",
    "cudnn_deterministic": "torch.backends.cudnn.deterministic = True",
    "cudnn_benchmark": "torch.backends.cudnn.benchmark (off when deterministic)",
    "deterministic_algorithms": "torch.use_deterministic_algorithms(True)",
    "fill_uninitialized_memory": "torch.utils.deterministic.fill_uninitialized_memory (>= 2.1)",
}
"""What each knob PyTorch reads sets, in PyTorch's own terms."""

WARM_START_PRELOAD = (
    "torch",
    "torchvision",
    "nnr_profile.profiler.runner.trial",
    "nnr_profile.profiler.collectors.device_sampler",
    "nnr_profile.profiler.collectors.nvml",
    "nnr_profile.workloads.torch.adapter",
    "nnr_profile.workloads.torch.models",
)
"""What a warm server imports (`profiler.runner.warm`): importing PyTorch starts no thread and
touches no device (CUDA, cuBLAS and cuDNN read their variables when they start, in the child),
so a process forked after it is as fresh as a new interpreter that imported it."""


def mode_environment(mode: Mode) -> dict[str, str]:
    """Environment variables `mode` needs before PyTorch starts (empty when none)."""
    if mode.is_on("cublas_workspace"):
        return {"CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE_CONFIG}
    return {}


def apply_torch_mode(mode: Mode) -> dict[str, object]:
    """Apply the mode's PyTorch knobs in this process; return what was set, for the record.

    Must run before the first CUDA tensor is created; the variables of `mode_environment` come
    from the process environment, which the runner set when it started this process.
    """
    import torch

    applied: dict[str, object] = {}
    if "cudnn_deterministic" in mode.knobs:
        torch.backends.cudnn.deterministic = mode.is_on("cudnn_deterministic")
        applied["cudnn.deterministic"] = torch.backends.cudnn.deterministic
    if "cudnn_benchmark" in mode.knobs:
        torch.backends.cudnn.benchmark = mode.is_on("cudnn_benchmark")
        applied["cudnn.benchmark"] = torch.backends.cudnn.benchmark
    if "deterministic_algorithms" in mode.knobs:
        torch.use_deterministic_algorithms(mode.is_on("deterministic_algorithms"))
        applied["deterministic_algorithms"] = torch.are_deterministic_algorithms_enabled()
    if "fill_uninitialized_memory" in mode.knobs:
        deterministic = getattr(torch.utils, "deterministic", None)
        if deterministic is not None and hasattr(deterministic, "fill_uninitialized_memory"):
            deterministic.fill_uninitialized_memory = mode.is_on("fill_uninitialized_memory")
            applied["fill_uninitialized_memory"] = deterministic.fill_uninitialized_memory
        else:
            applied["fill_uninitialized_memory"] = "unsupported (torch<2.1)"
    if "cublas_workspace" in mode.knobs:
        applied["CUBLAS_WORKSPACE_CONFIG"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    return applied
