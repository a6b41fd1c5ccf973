"""`calibrate`'s extra work in PyTorch: chained products with the layers' shape, or a GPU spin.

See `nnr_profile.workloads.injection` for how the amount is sized. On the CPU one unit is a
(batch x width) @ (width x width) product, the forward work of one of the model's Linear
layers; a fraction of a unit multiplies that share of the batch's rows. The product is chained
through an orthogonal matrix, so values neither grow nor shrink into denormals, and the cost of
a unit does not depend on how many there are. On a GPU one unit is a device-side spin of
`CYCLES_PER_UNIT` clock cycles (one kernel, no launch gaps).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from nnr_profile.workloads.timing import IterationTimer, PerfCounterTimer

CYCLES_PER_UNIT = 10_000
GPU_BLOCK = 4
"""Steps per sizing sample on a GPU: kernels queued during one step run in the next, so single
steps would misplace time between the two modes of a pair."""


class InjectedWork(nn.Module):
    """Returns its input unchanged after `units` of extra work (outside autograd)."""

    def __init__(self, width: int, share: float, probe_share: float) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        rotation, _ = torch.linalg.qr(torch.randn(width, width, generator=generator))
        self.register_buffer("rotation", rotation, persistent=False)
        self.share = share
        self.probe_share = probe_share
        self.units = 0.0

    def set_units(self, units: float) -> None:
        """Do `units` of extra work in each following step."""
        self.units = max(0.0, float(units))

    def sizing_timer(self, session: Any) -> IterationTimer:
        """This process's CPU time on a one-thread CPU trial, else the session's own timer."""
        if self.rotation.is_cuda or torch.get_num_threads() > 1:
            return session.timer()
        return PerfCounterTimer(clock=time.process_time_ns)

    def sizing_block(self) -> int:
        """GPU_BLOCK steps per sizing sample on a GPU (its queue carries over), else 1."""
        return GPU_BLOCK if self.rotation.is_cuda else 1

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """`inputs`, after the extra work."""
        if self.units <= 0:
            return inputs
        with torch.no_grad():
            if inputs.is_cuda:
                torch.cuda._sleep(round(self.units * CYCLES_PER_UNIT))
            else:
                self._products(inputs.detach())
        return inputs

    def _products(self, values: torch.Tensor) -> None:
        whole = math.floor(self.units)
        rows = round((self.units - whole) * values.shape[0])
        for _ in range(whole):
            values = values @ self.rotation
        if rows:
            _ = values[:rows] @ self.rotation
