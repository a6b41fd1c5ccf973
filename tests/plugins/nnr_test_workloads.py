"""Misbehaving workloads for failure-isolation tests, installed through the entry-point group."""

import os
import time

from nnr_profile.workloads import register_workload


def _tiny(ctx):
    from torch import nn

    return nn.Sequential(nn.Linear(ctx.input_shape[0], ctx.num_classes))


@register_workload(
    "torch", "raises_when_deterministic", input_shape=(8,), num_classes=4, input_kind="features"
)
def build_raises(ctx):
    """Builds in every mode but deterministic, where it raises."""
    if ctx.mode == "deterministic":
        raise RuntimeError("index_add_cuda_ does not have a deterministic implementation")
    return _tiny(ctx)


@register_workload("torch", "hangs", input_shape=(8,), num_classes=4, input_kind="features")
def build_hangs(ctx):
    """Never finishes building."""
    time.sleep(3600)


@register_workload("torch", "crashes", input_shape=(8,), num_classes=4, input_kind="features")
def build_crashes(ctx):
    """Kills its own process, as a segfault in a native library would."""
    os.abort()


@register_workload("tf", "stamps_time", input_shape=(8,), num_classes=4, input_kind="features")
def build_stamps_time(ctx):
    """A dense layer whose forward pass reads tf.timestamp(), an op TF refuses under determinism."""
    import keras
    import tensorflow as tf

    class StampedDense(keras.layers.Dense):
        def call(self, inputs):
            stamp = tf.cast(tf.timestamp(), inputs.dtype)
            return super().call(inputs) + 0.0 * stamp

    return keras.Sequential([keras.Input(shape=ctx.input_shape), StampedDense(ctx.num_classes)])
