"""`calibrate`'s extra work in JAX: chained products with the Dense layers' shape, in the step.

See `nnr_profile.workloads.injection` for how the amount is sized. One unit is a
(batch x width) @ (width x width) product, the forward work of one of the model's Dense layers;
a fraction of a unit multiplies that share of the batch's rows, in `FRACTIONS` row blocks. The
product is chained through an orthogonal matrix (values keep their size) in two
`jax.lax.fori_loop`s whose bounds come from the traced `units` argument of the step, so changing
the amount never retraces or recompiles it. The layer's output depends on the loops' result
(NaN there would propagate), so XLA cannot drop the work (it drops an unused result, even one
behind `optimization_barrier`), and the loss never runs beside it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnr_profile.workloads.timing import IterationTimer

FRACTIONS = 8
"""Row blocks a unit splits into: the finest step of the amount is 1/FRACTIONS of a unit."""


class InjectedWork:
    """A layer that returns its input unchanged after `units` of extra work (outside the
    gradient); `units` comes in as a traced argument, so setting it never retraces the step."""

    def __init__(self, width: int, share: float, probe_share: float) -> None:
        rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((width, width)))
        self.rotation = rotation.astype(np.float32)
        self.share = share
        self.probe_share = probe_share
        self.units = 0.0

    def set_units(self, units: float) -> None:
        """Do `units` of extra work in each following step."""
        self.units = max(0.0, float(units))

    def sizing_timer(self, session: Any) -> IterationTimer:
        """The session's own timer: XLA's CPU thread pool makes process CPU time no clock."""
        return session.timer()

    def sizing_block(self) -> int:
        """One step per sizing sample (the session's timer blocks at both edges of a step)."""
        return 1

    def __call__(self, inputs: jax.Array, units: jax.Array | None = None) -> jax.Array:
        """`inputs`, after `units` of extra work (none when `units` is None, e.g. at init)."""
        if units is None:
            return inputs
        rotation = jnp.asarray(self.rotation, inputs.dtype)
        values = jax.lax.stop_gradient(inputs)
        whole = jnp.floor(units)
        values = jax.lax.fori_loop(0, whole.astype(jnp.int32), lambda _, v: v @ rotation, values)
        blocks = min(FRACTIONS, values.shape[0])
        rows = values.shape[0] // blocks
        parts = jnp.round((units - whole) * blocks).astype(jnp.int32)

        def block(index: jax.Array, total: jax.Array) -> jax.Array:
            part = jax.lax.dynamic_slice_in_dim(values, index * rows, rows)
            return total + (part @ rotation).sum()

        sink = jax.lax.fori_loop(0, parts, block, values[:1].sum())
        return jnp.where(jnp.isnan(sink), sink, inputs)
