"""`timing`: the collector every trial runs, and the only one in timing trials.

The per-iteration times themselves are taken by the workload's iteration timer (CUDA events on
GPU, perf_counter on CPU, `workloads/timing.py`); this collector adds nothing around them, so
timing trials stay unperturbed.
"""

from __future__ import annotations

from nnr_profile.profiler.collectors.base import Collector


class TimingCollector(Collector):
    """Per-iteration wall time only: every hook keeps its no-effect default."""

    name = "timing"
    description = "per-iteration wall time (CUDA events on GPU, perf_counter on CPU)"
