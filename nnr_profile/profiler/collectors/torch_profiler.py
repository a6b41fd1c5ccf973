"""The `torch-profiler` collector: Kineto over the timed iterations, kept as a Chrome trace.

The trace (`<artifact>.pt.trace.json.gz`) opens in Perfetto and TensorBoard. On a GPU the stored
table is the CUDA kernels from that trace (read by the project's Kineto reader, so it equals
`nnr-profile trace summarize`); on the CPU it is the operator table (self CPU time per op, so
nested ops are not counted twice).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnr_profile.profiler.collectors.base import Collector, kernel_rows

if TYPE_CHECKING:
    from nnr_profile.core.specs import TrialResult, TrialSpec


class TorchProfilerCollector(Collector):
    """torch.profiler around the timed loop; kernel (GPU) or operator (CPU) table."""

    name = "torch-profiler"
    kernel_level = True
    description = "PyTorch profiler (Kineto): per-kernel times, Chrome trace kept"

    def __init__(self) -> None:
        self._profile: Any = None
        self._on_gpu = False

    def check(self, framework: str, gpus: Any) -> None:
        """Only PyTorch workloads can be observed by the PyTorch profiler."""
        if framework != "torch":
            from nnr_profile.core.errors import UsageError

            raise UsageError(
                f"--collector torch-profiler observes PyTorch only, not {framework}; "
                "use tf-profiler or nsys for TensorFlow"
            )

    def timed_region(self, spec: TrialSpec) -> Any:
        """Start Kineto for CPU (and CUDA on a GPU) activities."""
        from torch.profiler import ProfilerActivity, profile

        self._on_gpu = spec.device == "cuda"
        activities = [ProfilerActivity.CPU]
        if self._on_gpu:
            activities.append(ProfilerActivity.CUDA)
        self._profile = profile(activities=activities)
        return self._profile

    def iteration(self, index: int) -> Any:
        """A named range per iteration, visible in the trace."""
        import torch

        return torch.autograd.profiler.record_function(f"iteration {index}")

    def collect(self, result: TrialResult, artifact_base: Path) -> None:
        """Export the Chrome trace and store the kernel (GPU) or operator (CPU) table."""
        trace = artifact_base.with_name(artifact_base.name + ".pt.trace.json.gz")
        trace.parent.mkdir(parents=True, exist_ok=True)
        self._profile.export_chrome_trace(str(trace))
        result.artifacts.append(str(trace))
        if self._on_gpu:
            from nnr_profile.profiler.traces import kernel_stats

            result.kernels = kernel_rows(kernel_stats(trace, "kineto"))
            return
        result.kernels = [
            {
                "name": event.key,
                "short_name": event.key,
                "calls": int(event.count),
                "total_ns": round(event.self_cpu_time_total * 1000),
            }
            for event in self._profile.key_averages()
            if event.self_cpu_time_total > 0 and not event.key.startswith("iteration ")
        ]
