"""Apply a mode's PyTorch knobs in the trial process."""

from __future__ import annotations

import os

from nnr_profile.core.modes import Mode


def apply_torch_mode(mode: Mode) -> dict[str, object]:
    """Apply the mode's PyTorch knobs in this process; return what was set, for the record.

    Must run before the first CUDA tensor is created (environment variables from `mode_env`
    must already be set).
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
