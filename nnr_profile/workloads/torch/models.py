"""PyTorch workloads: the study's torchvision and timm models, its small models, `calibrate`.

The study's own models (smallcnn, mediumcnn, resnet18_cifar, resnet18_celeba) follow its Keras
layers twin for twin (`layout="study"`, Keras's BatchNormalization defaults, Keras's 'same'
padding for strided convolutions), so one name is one network in both frameworks; the
torchvision and timm models keep their own layout (`layout="torchvision"` / `"timm"`).

Builders import torch lazily so that registering them costs nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

from nnr_profile.core.errors import ParameterError
from nnr_profile.workloads.checks import (
    CALIBRATE_ARGS,
    CELEBA_SIDE,
    EMBEDDING_LM_ARGS,
    LENET_ARGS,
    MEDIUMCNN_ARGS,
    MEDIUMCNN_KERNELS,
    MLP_ARGS,
    RESNET18_CIFAR_ARGS,
    SMALLCNN_ARGS,
    check_embedding_lm,
    flattened_side,
    mediumcnn_name,
)
from nnr_profile.workloads.recipes import (
    OVERHEAD,
    SEED_LENET,
    SEED_MLP,
    STUDY_CELEBA,
    STUDY_RESNET18,
    STUDY_SMALLCNN,
)
from nnr_profile.workloads.registry import Arg, BuildContext, register_workload
from nnr_profile.workloads.torch.timm_models import TIMM_INSTALL, TIMM_MODELS, timm_builder

IMAGENET = {"input_shape": (3, 224, 224), "num_classes": 1000, "input_kind": "image"}

TORCHVISION_MODELS: dict[str, int] = {
    "resnet50": 32,
    "resnet101": 32,
    "resnet152": 32,
    "vgg16": 32,
    "vgg19": 32,
    "densenet121": 32,
    "densenet169": 32,
    "densenet201": 32,
    "mobilenet_v2": 32,
    "mobilenet_v3_large": 32,
    "efficientnet_b0": 32,
    "efficientnet_b1": 32,
    "efficientnet_b2": 32,
    "efficientnet_b3": 32,
    "efficientnet_b4": 32,
    "efficientnet_b5": 32,
    "efficientnet_b6": 32,
    "efficientnet_b7": 32,
}
"""torchvision model name -> smallest image side it accepts."""


"""torchvision model name -> smallest image side it accepts. They keep torchvision's layout
(`layout="torchvision"`) and train with the study's overhead recipe, as their Keras twins."""


def _torchvision_builder(name: str, model: str | None = None):
    def build(ctx: BuildContext) -> Any:
        import torchvision

        return getattr(torchvision.models, model or name)(weights=None, num_classes=ctx.num_classes)

    build.__doc__ = f"torchvision {model or name}, random init, synthetic ImageNet-shaped batches."
    return build


for _name, _min_side in TORCHVISION_MODELS.items():
    register_workload(
        "torch",
        _name,
        min_image_size=_min_side,
        recipe=OVERHEAD,
        layout="torchvision",
        **IMAGENET,
    )(_torchvision_builder(_name))

register_workload(
    "torch", "resnet18_imagenet", min_image_size=32, layout="torchvision", **IMAGENET
)(_torchvision_builder("resnet18_imagenet", "resnet18"))

for _name, (_timm_name, _side, _min_side) in TIMM_MODELS.items():
    register_workload(
        "torch",
        _name,
        input_shape=(3, _side, _side),
        num_classes=1000,
        min_image_size=_min_side,
        requires=("timm",),
        install_hint=TIMM_INSTALL,
        recipe=OVERHEAD,
        layout="timm",
    )(timm_builder(_timm_name))


INCEPTION_AUX_MIN_SIDE = 299


def _check_inception(args: dict[str, Any], image_size: int | None) -> None:
    side = image_size or INCEPTION_AUX_MIN_SIDE
    if args["aux_logits"] and side < INCEPTION_AUX_MIN_SIDE:
        raise ParameterError(
            "image_size",
            "must be at least {least} for inception_v3 with aux_logits, not {value}; "
            "the workload argument aux_logits=false allows smaller images",
            least=INCEPTION_AUX_MIN_SIDE,
            value=side,
        )


@register_workload(
    "torch",
    "inception_v3",
    input_shape=(3, 299, 299),
    num_classes=1000,
    min_image_size=75,
    arguments=(Arg("aux_logits", bool, True),),
    check_args=_check_inception,
    recipe=OVERHEAD,
    layout="torchvision",
)
def build_inception_v3(ctx: BuildContext) -> Any:
    """torchvision inception_v3 at 299x299; the aux-logits loss is added with weight 0.4."""
    import torchvision

    return torchvision.models.inception_v3(
        weights=None,
        num_classes=ctx.num_classes,
        aux_logits=bool(ctx.args["aux_logits"]),
        init_weights=True,
    )


def _check_vit(args: dict[str, Any], image_size: int | None) -> None:
    if image_size is not None and image_size % 16:
        raise ParameterError(
            "image_size", "must be divisible by 16 for vit_b_16, not {value}", value=image_size
        )


@register_workload(
    "torch",
    "vit_b_16",
    min_image_size=16,
    check_args=_check_vit,
    layout="torchvision",
    **IMAGENET,
)
def build_vit_b_16(ctx: BuildContext) -> Any:
    """torchvision vit_b_16 (transformer, 16x16 patches)."""
    import torchvision

    return torchvision.models.vit_b_16(
        weights=None, num_classes=ctx.num_classes, image_size=ctx.input_shape[-1]
    )


KERAS_BN = {"eps": 1e-3, "momentum": 0.01}
"""Keras's BatchNormalization defaults (momentum 0.99, epsilon 1e-3) in torch's terms."""


def keras_init(model: Any) -> Any:
    """`model` with Keras's initial weights: Glorot-uniform kernels, zero biases (in place)."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def _keras_same_pad(kernel: int, stride: int) -> Any:
    """A module padding as Keras's padding='same' does for a strided convolution."""
    import torch.nn.functional as F
    from torch import nn

    class KerasSamePad(nn.Module):
        """Zero padding as TensorFlow's 'same': total max((ceil(n/s)-1)*s+k-n, 0), more after."""

        def forward(self, x: Any) -> Any:
            pads = []
            for n in (x.shape[-1], x.shape[-2]):
                total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
                pads += [total // 2, total - total // 2]
            return F.pad(x, pads)

    return KerasSamePad()


@register_workload(
    "torch",
    "smallcnn",
    input_shape=(3, 32, 32),
    num_classes=10,
    min_image_size=8,
    arguments=SMALLCNN_ARGS,
    layout="study",
    recipe=STUDY_SMALLCNN,
)
def build_smallcnn(ctx: BuildContext) -> Any:
    """The study's small CNN: 3 x (conv3x3 16/32/32, BatchNorm if bn, ReLU, maxpool 2), GAP,
    dense 32, dense 10 (the Keras layers of smallcnn.py, twin for twin)."""
    from torch import nn

    layers: list[nn.Module] = []
    channels = [ctx.input_shape[0], 16, 32, 32]
    for c_in, c_out in itertools.pairwise(channels):
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
        if ctx.args["bn"]:
            layers.append(nn.BatchNorm2d(c_out, **KERAS_BN))
        layers += [nn.ReLU(), nn.MaxPool2d(2, stride=2)]
    return keras_init(
        nn.Sequential(
            *layers,
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 32),
            nn.ReLU(),
            nn.Linear(32, ctx.num_classes),
        )
    )


def _mediumcnn(ctx: BuildContext, kernel: int) -> Any:
    from torch import nn

    channels = [ctx.input_shape[0], 16, 32, 64, 128, 256, 512]
    blocks: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        blocks += [
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2),
            nn.BatchNorm2d(c_out, **KERAS_BN),
            nn.ReLU(),
            nn.MaxPool2d(2, stride=2),
        ]
    return keras_init(
        nn.Sequential(
            *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, ctx.num_classes)
        )
    )


@register_workload(
    "torch",
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


def _fixed_kernel_mediumcnn(kernel: int):
    def build(ctx: BuildContext) -> Any:
        return _mediumcnn(ctx, kernel)

    build.__doc__ = f"The study's 'MediumCNN {kernel}*{kernel}': mediumcnn with kernel={kernel}."
    return build


for _kernel in MEDIUMCNN_KERNELS:
    register_workload(
        "torch",
        mediumcnn_name(_kernel),
        min_image_size=64,
        recipe=OVERHEAD,
        layout="study",
        **IMAGENET,
    )(_fixed_kernel_mediumcnn(_kernel))


def _study_resnet18(ctx: BuildContext) -> Any:
    """The study's ResNet-18 (src/common/resnet.py) as torch modules, layer for Keras layer."""
    from torch import nn

    def bn(width: int) -> nn.Module:
        return nn.BatchNorm2d(width, **KERAS_BN)

    class Block(nn.Module):
        """ResidualBlock: conv-BN-ReLU, conv-BN, plus the (1x1 conv-BN when downsampling) input."""

        def __init__(self, c_in: int, width: int, downsample: bool) -> None:
            super().__init__()
            stride = 2 if downsample else 1
            first: list[nn.Module] = [_keras_same_pad(3, 2)] if downsample else []
            first.append(nn.Conv2d(c_in, width, 3, stride, 0 if downsample else 1, bias=False))
            self.residual = nn.Sequential(
                *first,
                bn(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                bn(width),
            )
            self.shortcut = (
                nn.Sequential(nn.Conv2d(c_in, width, 1, 2, bias=False), bn(width))
                if downsample
                else nn.Identity()
            )
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.relu(self.shortcut(x) + self.residual(x))

    blocks: list[nn.Module] = []
    c_in = 64
    for stage, width in enumerate((64, 128, 256, 512)):
        blocks += [Block(c_in, width, stage > 0), Block(width, width, False)]
        c_in = width
    height, width = (flattened_side(n) for n in ctx.input_shape[1:])
    return keras_init(
        nn.Sequential(
            nn.Conv2d(ctx.input_shape[0], 64, 3, padding=1, bias=False),
            bn(64),
            nn.ReLU(),
            *blocks,
            nn.AvgPool2d(4),
            nn.Flatten(),
            nn.Linear(512 * height * width, ctx.num_classes),
        )
    )


@register_workload(
    "torch",
    "resnet18_cifar",
    input_shape=(3, 32, 32),
    num_classes=10,
    min_image_size=32,
    arguments=RESNET18_CIFAR_ARGS,
    layout="study",
    recipe=STUDY_RESNET18,
)
def build_resnet18_cifar(ctx: BuildContext) -> Any:
    """The study's CIFAR ResNet-18: 3x3 stem, no max-pool, 2-2-2-2 blocks, AvgPool(4), dense."""
    return _study_resnet18(ctx)


@register_workload(
    "torch",
    "resnet18_celeba",
    input_shape=(3, CELEBA_SIDE, CELEBA_SIDE),
    num_classes=40,
    min_image_size=32,
    layout="study",
    recipe=STUDY_CELEBA,
)
def build_resnet18_celeba(ctx: BuildContext) -> Any:
    """The study's CelebA model: its CIFAR ResNet-18 at 128x128, 40 attributes (sigmoid)."""
    return _study_resnet18(ctx)


@register_workload(
    "torch",
    "lenet",
    input_shape=(1, 28, 28),
    num_classes=10,
    min_image_size=28,
    arguments=LENET_ARGS,
    recipe=SEED_LENET,
)
def build_lenet(ctx: BuildContext) -> Any:
    """LeNet: conv 20 5x5, maxpool, conv 50 5x5, maxpool, fc 500, fc 10 (dropout options)."""
    from torch import nn

    side = ((ctx.input_shape[-1] - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(ctx.input_shape[0], 20, 5),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5),
        nn.MaxPool2d(2),
        nn.Dropout(float(ctx.args["conv_dropout"])),
        nn.Flatten(),
        nn.Linear(50 * side * side, 500),
        nn.ReLU(),
        nn.Dropout(float(ctx.args["dropout"])),
        nn.Linear(500, ctx.num_classes),
    )


@register_workload(
    "torch",
    "mlp",
    input_shape=(784,),
    num_classes=10,
    input_kind="features",
    arguments=MLP_ARGS,
    recipe=SEED_MLP,
)
def build_mlp(ctx: BuildContext) -> Any:
    """MLP 784 -> 392 -> 196 -> 10 with norm=none|batch|layer and dropout."""
    from torch import nn

    norms = {"none": lambda n: nn.Identity(), "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}
    make_norm = norms[ctx.args["norm"]]
    widths = [ctx.input_shape[0], 392, 196]
    layers: list[nn.Module] = []
    for w_in, w_out in itertools.pairwise(widths):
        layers += [
            nn.Linear(w_in, w_out),
            make_norm(w_out),
            nn.ReLU(),
            nn.Dropout(float(ctx.args["dropout"])),
        ]
    return nn.Sequential(*layers, nn.Linear(widths[-1], ctx.num_classes))


@register_workload(
    "torch",
    "embedding_lm",
    input_shape=(64,),
    num_classes=1000,
    input_kind="tokens",
    default_batch_size=128,
    optimizer="adam",
    learning_rate=1e-3,
    arguments=EMBEDDING_LM_ARGS,
    check_args=check_embedding_lm,
)
def build_embedding_lm(ctx: BuildContext) -> Any:
    """Small LM: embedding + TransformerEncoder + linear head; exercises embedding backward."""
    from torch import nn

    class EmbeddingLM(nn.Module):
        def __init__(self, vocab: int, d_model: int, heads: int, layers: int) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, d_model)
            layer = nn.TransformerEncoderLayer(
                d_model, heads, dim_feedforward=4 * d_model, batch_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.head = nn.Linear(d_model, vocab)

        def forward(self, tokens):
            return self.head(self.encoder(self.embed(tokens)))

    return EmbeddingLM(
        ctx.num_classes, int(ctx.args["d_model"]), int(ctx.args["heads"]), int(ctx.args["layers"])
    )


@register_workload(
    "torch",
    "calibrate",
    input_shape=(512,),
    num_classes=512,
    input_kind="features",
    arguments=CALIBRATE_ARGS,
    applies_knobs=False,
)
def build_calibrate(ctx: BuildContext) -> Any:
    """Known truth in time: `layers` Linear layers; deterministic mode adds `overhead` x step time.

    After warm-up the trial measures the median step time in its own process and sizes extra
    work (the layers' own products; a spin on a GPU) to `overhead` x that time
    (`nnr_profile.workloads.injection`). No determinism knob is set (they have costs of their
    own), so modes differ only by the injected work and the report should recover `overhead`.
    """
    from torch import nn

    from nnr_profile.workloads.injection import calibrate_shares
    from nnr_profile.workloads.torch.injected import InjectedWork

    width = ctx.input_shape[0]
    layers: list[nn.Module] = []
    for _ in range(int(ctx.args["layers"])):
        layers += [nn.Linear(width, width), nn.ReLU()]
    share, probe_share = calibrate_shares(ctx.args["overhead"], ctx.mode)
    return nn.Sequential(*layers, InjectedWork(width, share, probe_share))
