"""The `timing` collector: one wall time per training iteration, in milliseconds.

On a GPU, CUDA events bracket each iteration on the device's stream and are read after the
loop (no sync inside the timed loop); on the CPU, `perf_counter` brackets each iteration,
after a framework sync so queued work is counted in the iteration that queued it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class IterationTimer(Protocol):
    """Brackets iterations; `times_ms` gives one duration per start/stop pair."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def times_ms(self) -> list[float]: ...


class PerfCounterTimer:
    """Host-side timer: `sync()` then `clock` (perf_counter, ns) at each edge of an iteration.

    `clock=time.process_time_ns` measures this process's CPU time instead of wall time.
    """

    def __init__(
        self,
        sync: Callable[[], None] = lambda: None,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self._sync = sync
        self._clock = clock
        self._starts: list[int] = []
        self._stops: list[int] = []

    def start(self) -> None:
        """Mark the start of an iteration."""
        self._sync()
        self._starts.append(self._clock())

    def stop(self) -> None:
        """Mark the end of an iteration (after its work has finished)."""
        self._sync()
        self._stops.append(self._clock())

    def times_ms(self) -> list[float]:
        """Per-iteration durations in milliseconds."""
        return [(b - a) / 1e6 for a, b in zip(self._starts, self._stops, strict=True)]


class CudaEventTimer:
    """Device-side timer: a pair of CUDA events per iteration, read once after the loop."""

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self._pairs: list[tuple[object, object]] = []

    def start(self) -> None:
        """Record the start event on the current stream."""
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        self._pairs.append((event, None))

    def stop(self) -> None:
        """Record the end event on the current stream."""
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        begin, _ = self._pairs[-1]
        self._pairs[-1] = (begin, event)

    def times_ms(self) -> list[float]:
        """Per-iteration device times in milliseconds (synchronises once)."""
        self._torch.cuda.synchronize()
        return [begin.elapsed_time(end) for begin, end in self._pairs]
