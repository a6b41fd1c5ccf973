"""Misbehaving workloads for failure-isolation tests, installed through the entry-point group."""

import os
import time
from collections import OrderedDict

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


@register_workload(
    "torch",
    "noisy_layer",
    input_shape=(8,),
    num_classes=4,
    input_kind="features",
    params={"phase": "backward"},
    default_batch_size=4,
)
def build_noisy_layer(ctx):
    """Linear -> noisy (a Linear) -> ReLU -> Linear; `noisy` adds noise in runs but the first.

    The noise goes into the `phase` given (forward: its output; backward: the gradient w.r.t.
    its input; weight: the gradient w.r.t. its weight), seeded from the run index that verify
    gives each run (NNR_RUN_INDEX), so run 1 is clean and the others are not. It also calls
    put_, which has no deterministic implementation, so PyTorch's warn_only warning is raised
    inside it.
    """
    import torch
    from torch import nn

    run = int(os.environ.get("NNR_RUN_INDEX", "0"))
    phase = ctx.args["phase"]

    def noise_like(tensor):
        generator = torch.Generator().manual_seed(run)
        return torch.randn(tensor.shape, generator=generator) * 1e-3 * (run > 0)

    class NoisyGrad(torch.autograd.Function):
        @staticmethod
        def forward(_, x):
            return x.clone()

        @staticmethod
        def backward(_, grad):
            return grad + noise_like(grad)

    class Noisy(nn.Linear):
        def forward(self, x):
            torch.zeros(2).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))
            if phase == "backward":
                x = NoisyGrad.apply(x)
            weight = NoisyGrad.apply(self.weight) if phase == "weight" else self.weight
            out = nn.functional.linear(x, weight, self.bias)
            return out + noise_like(out) if phase == "forward" else out

    layers = [
        ("hidden", nn.Linear(ctx.input_shape[0], 16)),
        ("noisy", Noisy(16, 16)),
        ("relu", nn.ReLU()),
        ("head", nn.Linear(16, ctx.num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


@register_workload(
    "tf",
    "noisy_layer",
    input_shape=(8,),
    num_classes=4,
    input_kind="features",
    params={"phase": "backward"},
    default_batch_size=4,
)
def build_tf_noisy_layer(ctx):
    """Dense -> noisy (a Dense) -> ReLU -> Dense; `noisy` adds noise in runs but the first.

    As the torch `noisy_layer`: noise in the `phase` given (forward: its output; backward: the
    gradient w.r.t. its input), seeded from NNR_RUN_INDEX.
    """
    import keras
    import tensorflow as tf

    run = int(os.environ.get("NNR_RUN_INDEX", "0"))
    phase = ctx.args["phase"]

    def noise_like(tensor):
        noise = tf.random.stateless_normal(tf.shape(tensor), seed=[run, 0], dtype=tensor.dtype)
        return noise * (1e-3 if run > 0 else 0.0)

    @tf.custom_gradient
    def noisy_grad(x):
        return tf.identity(x), lambda grad: grad + noise_like(grad)

    class NoisyDense(keras.layers.Dense):
        def call(self, inputs):
            if phase == "backward":
                inputs = noisy_grad(inputs)
            out = super().call(inputs)
            return out + noise_like(out) if phase == "forward" else out

    return keras.Sequential(
        [
            keras.Input(shape=ctx.input_shape),
            keras.layers.Dense(16, name="hidden"),
            NoisyDense(16, name="noisy"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Dense(ctx.num_classes, name="head"),
        ]
    )


@register_workload(
    "torch",
    "host_rng",
    input_shape=(8,),
    num_classes=4,
    input_kind="features",
    default_batch_size=4,
)
def build_host_rng(ctx):
    """A Linear whose input is jittered by Python's and NumPy's global RNGs in every forward."""
    import random

    import numpy as np
    from torch import nn

    class Jittered(nn.Linear):
        def forward(self, x):
            scale = 1.0 + 0.01 * random.random() + 0.01 * float(np.random.rand())
            return super().forward(x * scale)

    return Jittered(ctx.input_shape[0], ctx.num_classes)
