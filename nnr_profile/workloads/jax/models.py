"""JAX workloads: flax.linen twins of the PyTorch and TensorFlow mlp, lenet and smallcnn.

Each model has its twins' layers in their order and the same trainable parameters; images are
(H, W, C), as in TensorFlow. Weights start as Keras's do (Glorot-uniform kernels, zero biases),
and BatchNormalization keeps the twin's settings (Keras's defaults for the study's smallcnn,
PyTorch's for mlp). Models emit logits; the loss applies the recipe's output activation, as in
PyTorch. Builders import flax lazily so that registering them costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any

from nnr_profile.workloads.checks import LENET_ARGS, MLP_ARGS, SMALLCNN_ARGS
from nnr_profile.workloads.recipes import SEED_LENET, SEED_MLP, STUDY_SMALLCNN
from nnr_profile.workloads.registry import BuildContext, register_workload

KERAS_BN = {"momentum": 0.99, "epsilon": 1e-3}
"""Keras's BatchNormalization defaults (the study's models)."""
TORCH_BN = {"momentum": 0.9, "epsilon": 1e-5}
"""PyTorch's BatchNorm defaults in flax's terms (flax's momentum is 1 - PyTorch's)."""


@cache
def stack_class() -> type:
    """The flax module that applies layers in order, telling BatchNorm and Dropout the phase."""
    import flax.linen as nn

    class Stack(nn.Module):
        """Layers in order; `train` selects batch statistics and turns dropout on."""

        layers: Sequence[Any]

        def __call__(self, x: Any, train: bool = False) -> Any:
            """The output for `x`."""
            for layer in self.layers:
                if isinstance(layer, nn.BatchNorm):
                    x = layer(x, use_running_average=not train)
                elif isinstance(layer, nn.Dropout):
                    x = layer(x, deterministic=not train)
                else:
                    x = layer(x)
            return x

    return Stack


def _stack(layers: list[Any]) -> Any:
    return stack_class()(layers=tuple(layers))


def _dense(width: int) -> Any:
    import flax.linen as nn

    return nn.Dense(width, kernel_init=nn.initializers.glorot_uniform())


def _conv(width: int, kernel: int, padding: str) -> Any:
    import flax.linen as nn

    return nn.Conv(
        width, (kernel, kernel), padding=padding, kernel_init=nn.initializers.glorot_uniform()
    )


def _max_pool() -> Callable[[Any], Any]:
    import flax.linen as nn

    return partial(nn.max_pool, window_shape=(2, 2), strides=(2, 2))


def _flatten(x: Any) -> Any:
    return x.reshape((x.shape[0], -1))


def _global_average_pool(x: Any) -> Any:
    return x.mean(axis=(1, 2))


@register_workload(
    "jax",
    "smallcnn",
    input_shape=(32, 32, 3),
    num_classes=10,
    min_image_size=8,
    arguments=SMALLCNN_ARGS,
    layout="study",
    recipe=STUDY_SMALLCNN,
)
def build_smallcnn(ctx: BuildContext) -> Any:
    """The study's small CNN: 3 x (conv3x3 16/32/32, BatchNorm if bn, ReLU, maxpool 2), GAP,
    dense 32, dense 10 (the Keras layers of smallcnn.py, twin for twin)."""
    import flax.linen as nn

    layers: list[Any] = []
    for width in (16, 32, 32):
        layers.append(_conv(width, 3, "SAME"))
        if ctx.args["bn"]:
            layers.append(nn.BatchNorm(**KERAS_BN))
        layers += [nn.relu, _max_pool()]
    layers += [_global_average_pool, _dense(32), nn.relu, _dense(ctx.num_classes)]
    return _stack(layers)


@register_workload(
    "jax",
    "lenet",
    input_shape=(28, 28, 1),
    num_classes=10,
    min_image_size=28,
    arguments=LENET_ARGS,
    recipe=SEED_LENET,
)
def build_lenet(ctx: BuildContext) -> Any:
    """LeNet: conv 20 5x5, maxpool, conv 50 5x5, maxpool, fc 500, fc 10 (dropout options)."""
    import flax.linen as nn

    return _stack(
        [
            _conv(20, 5, "VALID"),
            _max_pool(),
            _conv(50, 5, "VALID"),
            _max_pool(),
            nn.Dropout(float(ctx.args["conv_dropout"])),
            _flatten,
            _dense(500),
            nn.relu,
            nn.Dropout(float(ctx.args["dropout"])),
            _dense(ctx.num_classes),
        ]
    )


@register_workload(
    "jax",
    "mlp",
    input_shape=(784,),
    num_classes=10,
    input_kind="features",
    arguments=MLP_ARGS,
    recipe=SEED_MLP,
)
def build_mlp(ctx: BuildContext) -> Any:
    """MLP 784 -> 392 -> 196 -> 10 with norm=none|batch|layer and dropout."""
    import flax.linen as nn

    norms: dict[str, Callable[[], list[Any]]] = {
        "none": list,
        "batch": lambda: [nn.BatchNorm(**TORCH_BN)],
        "layer": lambda: [nn.LayerNorm(epsilon=1e-5)],
    }
    layers: list[Any] = []
    for width in (392, 196):
        layers += [
            _dense(width),
            *norms[ctx.args["norm"]](),
            nn.relu,
            nn.Dropout(float(ctx.args["dropout"])),
        ]
    return _stack([*layers, _dense(ctx.num_classes)])
