"""The `nvprof` collector for GPUs before compute capability 8.0 (nvprof refuses newer ones).

The trial runs under `nvprof --profile-from-start off`; the timed loop is bracketed by
cudaProfilerStart/Stop, so only the timed iterations are recorded; the `-o` database is read
with the project's nvprof reader.
"""

from __future__ import annotations

import ctypes
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnr_profile.core.errors import MissingDependencyError, UsageError
from nnr_profile.profiler.collectors.base import Collector, kernel_rows
from nnr_profile.profiler.collectors.nvtx_ranges import TIMED_RANGE, nvtx_range

if TYPE_CHECKING:
    from nnr_profile.core.specs import TrialResult, TrialSpec

NEWEST_SUPPORTED = (8, 0)
"""nvprof does not profile compute capability 8.0 (Ampere) and newer."""


def _cudart() -> Any:
    for name in ("libcudart.so", "libcudart.so.12", "libcudart.so.11.0"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@contextmanager
def cuda_profiler_range() -> Iterator[None]:
    """cudaProfilerStart/Stop around a block (through torch when loaded, else libcudart)."""
    try:
        import torch.cuda.profiler as torch_profiler

        start, stop = torch_profiler.start, torch_profiler.stop
    except ImportError:
        runtime = _cudart()
        if runtime is None:
            raise MissingDependencyError("nvprof needs libcudart for cudaProfilerStart") from None
        start, stop = runtime.cudaProfilerStart, runtime.cudaProfilerStop
    start()
    try:
        yield
    finally:
        stop()


class NvprofCollector(Collector):
    """nvprof over the timed iterations (Pascal, Volta, Turing)."""

    name = "nvprof"
    kernel_level = True
    description = "nvprof (compute capability < 8.0), profiler range = timed iterations"

    def check(self, framework: str, gpus: Sequence[dict[str, Any] | None]) -> None:
        """nvprof must exist, and every GPU must be older than compute capability 8.0."""
        if not gpus or any(g is None for g in gpus):
            raise UsageError("--collector nvprof profiles GPUs only: pick GPUs with --gpu")
        for gpu in gpus:
            major, minor = (int(p) for p in gpu["compute_capability"].split("."))
            if (major, minor) >= NEWEST_SUPPORTED:
                raise UsageError(
                    f"nvprof does not support compute capability 8.0 and newer: gpu{gpu['index']} "
                    f"({gpu['name']}) is {major}.{minor}; use --collector nsys"
                )
        if shutil.which("nvprof") is None:
            raise MissingDependencyError(
                "--collector nvprof needs nvprof (CUDA toolkit <= 12, e.g. the cuda11.8 image)"
            )

    def command_prefix(self, artifact_base: Path) -> list[str]:
        """`nvprof` writing a database, recording only inside the profiler range."""
        database = artifact_base.with_name(artifact_base.name + ".nvprof.sqlite")
        return ["nvprof", "--profile-from-start", "off", "-f", "-o", str(database)]

    def timed_region(self, spec: TrialSpec) -> Any:
        """cudaProfilerStart/Stop and an NVTX range around the timed loop."""
        return _both(cuda_profiler_range(), nvtx_range(TIMED_RANGE))

    def iteration(self, index: int) -> Any:
        """One NVTX range per timed iteration."""
        return nvtx_range(f"iteration {index}")

    def finish(self, result: TrialResult, artifact_base: Path) -> None:
        """Read the kernels from the nvprof database."""
        from nnr_profile.profiler.traces import kernel_stats

        database = artifact_base.with_name(artifact_base.name + ".nvprof.sqlite")
        result.artifacts.append(str(database))
        result.kernels = kernel_rows(kernel_stats(database, "nvprof-sqlite"))


@contextmanager
def _both(first: Any, second: Any) -> Iterator[None]:
    with first, second:
        yield
