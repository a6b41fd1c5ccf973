"""`calibrate`'s extra work in TensorFlow: chained products with the Dense layers' shape.

See `nnr_profile.workloads.injection` for how the amount is sized. One unit is a
(batch x width) @ (width x width) product, the forward work of one of the model's Dense layers;
a fraction of a unit multiplies that share of the batch's rows. The product is chained through
an orthogonal matrix (values keep their size), in a `tf.while_loop` inside the compiled step,
whose amount is a variable, so changing it never retraces the step. The layer's output waits
for the loop, so the loss never runs beside it.
"""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nnr_profile.workloads.timing import IterationTimer, PerfCounterTimer


class _State:
    """The injector's variables, kept off the layer so they are not model weights (or hashed)."""

    def __init__(self, width: int) -> None:
        rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((width, width)))
        self.rotation = tf.constant(rotation, tf.float32)
        self.units = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.sink = tf.Variable(0.0, trainable=False, dtype=tf.float32)


class InjectedWork(keras.layers.Layer):
    """Returns its input unchanged after `units` of extra work (outside the gradient)."""

    def __init__(self, width: int, share: float, probe_share: float, **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.share = share
        self.probe_share = probe_share
        self._state = _State(width)

    def set_units(self, units: float) -> None:
        """Do `units` of extra work in each following step."""
        self._state.units.assign(max(0.0, float(units)))

    def sizing_timer(self, session: Any) -> IterationTimer:
        """This process's CPU time on a one-thread CPU trial, else the session's own timer."""
        threading = tf.config.threading
        one_thread = threading.get_intra_op_parallelism_threads() == 1
        if "GPU" in str(session.device).upper() or not one_thread:
            return session.timer()
        return PerfCounterTimer(session.sync, clock=time.process_time_ns)

    def sizing_block(self) -> int:
        """One step per sizing sample (each step ends with a device sync)."""
        return 1

    def compute_output_spec(self, inputs: Any) -> Any:
        """The input's spec: the layer returns its input."""
        return keras.KerasTensor(inputs.shape, inputs.dtype)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        """`inputs`, after the extra work."""
        state = self._state
        whole = tf.floor(state.units)
        batch = tf.cast(tf.shape(inputs)[0], tf.float32)
        rows = tf.cast(tf.round((state.units - whole) * batch), tf.int32)
        _, values = tf.while_loop(
            lambda i, _: i < tf.cast(whole, tf.int32),
            lambda i, v: (i + 1, tf.matmul(v, state.rotation)),
            (tf.constant(0), tf.stop_gradient(inputs)),
        )
        part = tf.matmul(values[:rows], state.rotation)
        done = state.sink.assign(tf.reduce_sum(values[:1]) + tf.reduce_sum(part))
        with tf.control_dependencies([done]):
            return tf.identity(inputs)
