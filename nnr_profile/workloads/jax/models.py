"""JAX workloads: flax.linen twins of the PyTorch and TensorFlow models, and `calibrate`.

The twins are mlp, lenet, smallcnn, mediumcnn (and mediumcnn_kxk), resnet18_cifar and
resnet50. Each has its twins' layers in their order and the same trainable parameters; images
are (H, W, C), as in TensorFlow. The study's models and mlp start as Keras's do
(Glorot-uniform kernels, zero biases); resnet50 follows torchvision's (Kaiming-normal
convolutions, PyTorch's Linear). BatchNorm keeps the twin's settings (Keras's defaults for the
study's models, PyTorch's for mlp and resnet50), its statistics in flax's `batch_stats`. Models
emit logits; the loss applies the recipe's output activation, as in PyTorch. Builders import
flax lazily so that registering them costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any

from nnr_profile.workloads.checks import (
    CALIBRATE_ARGS,
    LENET_ARGS,
    MEDIUMCNN_ARGS,
    MEDIUMCNN_KERNELS,
    MLP_ARGS,
    RESNET18_CIFAR_ARGS,
    SMALLCNN_ARGS,
    mediumcnn_name,
)
from nnr_profile.workloads.recipes import (
    OVERHEAD,
    SEED_LENET,
    SEED_MLP,
    STUDY_RESNET18,
    STUDY_SMALLCNN,
)
from nnr_profile.workloads.registry import BuildContext, register_workload

KERAS_BN = {"momentum": 0.99, "epsilon": 1e-3}
"""Keras's BatchNormalization defaults (the study's models)."""
TORCH_BN = {"momentum": 0.9, "epsilon": 1e-5}
"""PyTorch's BatchNorm defaults in flax's terms (flax's momentum is 1 - PyTorch's)."""
IMAGENET = {"input_shape": (224, 224, 3), "num_classes": 1000, "input_kind": "image"}


@cache
def stack_class() -> type:
    """The flax module that applies layers in order, telling BatchNorm, Dropout and residual
    blocks the phase, and the injected work (`calibrate`) its amount."""
    import flax.linen as nn

    from nnr_profile.workloads.jax.injected import InjectedWork

    phased = block_classes()

    class Stack(nn.Module):
        """Layers in order; `train` selects batch statistics and turns dropout on; `units` is
        the injected work's amount (a traced scalar, or None for none)."""

        layers: Sequence[Any]

        def __call__(self, x: Any, train: bool = False, units: Any = None) -> Any:
            """The output for `x`."""
            for layer in self.layers:
                if isinstance(layer, nn.BatchNorm):
                    x = layer(x, use_running_average=not train)
                elif isinstance(layer, nn.Dropout):
                    x = layer(x, deterministic=not train)
                elif isinstance(layer, phased):
                    x = layer(x, train)
                elif isinstance(layer, InjectedWork):
                    x = layer(x, units)
                else:
                    x = layer(x)
            return x

    return Stack


@cache
def block_classes() -> tuple[type, type]:
    """The residual blocks (the study's ResNet-18 block, torchvision's Bottleneck), which take
    the phase."""
    import flax.linen as nn

    class StudyBlock(nn.Module):
        """src/common/resnet.py's ResidualBlock: conv3x3-BN-ReLU, conv3x3-BN, plus the input
        (through 1x1 conv stride 2-BN when downsampling), ReLU; Keras's 'same' padding."""

        width: int
        downsample: bool

        @nn.compact
        def __call__(self, x: Any, train: bool = False) -> Any:
            """The block's output for `x`."""

            def conv_bn(y: Any, kernel: int, stride: int) -> Any:
                y = _conv(self.width, kernel, "SAME", stride=stride, bias=False)(y)
                return nn.BatchNorm(use_running_average=not train, **KERAS_BN)(y)

            stride = 2 if self.downsample else 1
            shortcut = conv_bn(x, 1, 2) if self.downsample else x
            y = nn.relu(conv_bn(x, 3, stride))
            return nn.relu(shortcut + conv_bn(y, 3, 1))

    class Bottleneck(nn.Module):
        """torchvision's Bottleneck (ResNet v1.5): 1x1, 3x3 with the stride, 1x1 to 4 x width,
        each with BatchNorm; a 1x1 projection-BN shortcut when `project`."""

        width: int
        stride: int
        project: bool

        @nn.compact
        def __call__(self, x: Any, train: bool = False) -> Any:
            """The block's output for `x`."""

            def bn(y: Any) -> Any:
                return nn.BatchNorm(use_running_average=not train, **TORCH_BN)(y)

            y = nn.relu(bn(_torch_conv(self.width, 1, 1, 0)(x)))
            y = nn.relu(bn(_torch_conv(self.width, 3, self.stride, 1)(y)))
            y = bn(_torch_conv(4 * self.width, 1, 1, 0)(y))
            shortcut = bn(_torch_conv(4 * self.width, 1, self.stride, 0)(x)) if self.project else x
            return nn.relu(y + shortcut)

    return StudyBlock, Bottleneck


def _stack(layers: list[Any]) -> Any:
    return stack_class()(layers=tuple(layers))


def _dense(width: int) -> Any:
    import flax.linen as nn

    return nn.Dense(width, kernel_init=nn.initializers.glorot_uniform())


def _conv(width: int, kernel: int, padding: str, stride: int = 1, bias: bool = True) -> Any:
    import flax.linen as nn

    return nn.Conv(
        width,
        (kernel, kernel),
        strides=(stride, stride),
        padding=padding,
        use_bias=bias,
        kernel_init=nn.initializers.glorot_uniform(),
    )


def _torch_conv(width: int, kernel: int, stride: int, pad: int) -> Any:
    """A bias-free convolution with PyTorch's symmetric padding and torchvision's ResNet init
    (Kaiming normal, fan out)."""
    import flax.linen as nn

    return nn.Conv(
        width,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
    )


def _torch_dense(width: int, fan_in: int) -> Any:
    """A Dense layer that starts as PyTorch's Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    import flax.linen as nn
    import jax

    bound = fan_in**-0.5

    def bias_init(key: Any, shape: Any, dtype: Any = None) -> Any:
        return jax.random.uniform(key, shape, dtype or "float32", -bound, bound)

    return nn.Dense(
        width,
        kernel_init=nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
        bias_init=bias_init,
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


def _mediumcnn(ctx: BuildContext, kernel: int) -> Any:
    import flax.linen as nn

    layers: list[Any] = []
    for width in (16, 32, 64, 128, 256, 512):
        layers += [_conv(width, kernel, "SAME"), nn.BatchNorm(**KERAS_BN), nn.relu, _max_pool()]
    return _stack([*layers, _global_average_pool, _dense(ctx.num_classes)])


@register_workload(
    "jax",
    "mediumcnn",
    min_image_size=64,
    arguments=MEDIUMCNN_ARGS,
    recipe=OVERHEAD,
    layout="study",
    **IMAGENET,
)
def build_mediumcnn(ctx: BuildContext) -> Any:
    """The study's MediumCNN: 6 x (conv kxk, BatchNorm (Keras defaults), ReLU, maxpool 2),
    16->512 ch, GAP, dense 1000."""
    return _mediumcnn(ctx, int(ctx.args["kernel"]))


def _fixed_kernel_mediumcnn(kernel: int) -> Callable[[BuildContext], Any]:
    def build(ctx: BuildContext) -> Any:
        return _mediumcnn(ctx, kernel)

    build.__doc__ = f"The study's 'MediumCNN {kernel}*{kernel}': mediumcnn with kernel={kernel}."
    return build


for _kernel in MEDIUMCNN_KERNELS:
    register_workload(
        "jax",
        mediumcnn_name(_kernel),
        min_image_size=64,
        recipe=OVERHEAD,
        layout="study",
        **IMAGENET,
    )(_fixed_kernel_mediumcnn(_kernel))


@register_workload(
    "jax",
    "resnet18_cifar",
    input_shape=(32, 32, 3),
    num_classes=10,
    min_image_size=32,
    arguments=RESNET18_CIFAR_ARGS,
    layout="study",
    recipe=STUDY_RESNET18,
)
def build_resnet18_cifar(ctx: BuildContext) -> Any:
    """The study's CIFAR ResNet-18: 3x3 stem, no max-pool, 2-2-2-2 blocks, AvgPool(4), dense."""
    import flax.linen as nn

    study_block, _ = block_classes()
    blocks = [
        study_block(width, downsample)
        for stage, width in enumerate((64, 128, 256, 512))
        for downsample in (stage > 0, False)
    ]
    return _stack(
        [
            _conv(64, 3, "SAME", bias=False),
            nn.BatchNorm(**KERAS_BN),
            nn.relu,
            *blocks,
            partial(nn.avg_pool, window_shape=(4, 4), strides=(4, 4)),
            _flatten,
            _dense(ctx.num_classes),
        ]
    )


@register_workload(
    "jax", "resnet50", min_image_size=32, recipe=OVERHEAD, layout="torchvision", **IMAGENET
)
def build_resnet50(ctx: BuildContext) -> Any:
    """torchvision's resnet50 in flax: 7x7 stem, max-pool, 3-4-6-3 bottlenecks (stride in the
    3x3), GAP, dense; torchvision's initialisation, PyTorch's BatchNorm defaults."""
    import flax.linen as nn

    _, bottleneck = block_classes()
    blocks = []
    for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        blocks.append(bottleneck(width, stride, True))
        blocks += [bottleneck(width, 1, False) for _ in range(count - 1)]
    stem_pool = partial(nn.max_pool, window_shape=(3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    return _stack(
        [
            _torch_conv(64, 7, 2, 3),
            nn.BatchNorm(**TORCH_BN),
            nn.relu,
            stem_pool,
            *blocks,
            _global_average_pool,
            _torch_dense(ctx.num_classes, 2048),
        ]
    )


@register_workload(
    "jax",
    "calibrate",
    input_shape=(512,),
    num_classes=512,
    input_kind="features",
    arguments=CALIBRATE_ARGS,
    applies_knobs=False,
)
def build_calibrate(ctx: BuildContext) -> Any:
    """Known truth in time: `layers` Dense layers; deterministic mode adds `overhead` x step time.

    The JAX twin of torch's calibrate: extra products in the jitted step, sized after warm-up to
    `overhead` x the measured step time (`nnr_profile.workloads.injection`), their amount a
    traced argument; no determinism knob is set.
    """
    import flax.linen as nn

    from nnr_profile.workloads.injection import calibrate_shares
    from nnr_profile.workloads.jax.injected import InjectedWork

    width = ctx.input_shape[0]
    layers: list[Any] = []
    for _ in range(int(ctx.args["layers"])):
        layers += [_dense(width), nn.relu]
    share, probe_share = calibrate_shares(ctx.args["overhead"], ctx.mode)
    return _stack([*layers, InjectedWork(width, share, probe_share)])
