"""PyTorch workloads: the study's torchvision models, its small models, and `calibrate`.

Builders import torch lazily so that registering them costs nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

from nnr_profile.core.errors import UsageError
from nnr_profile.workloads.checks import (
    calibrate_extra_layers,
    check_calibrate,
    check_mediumcnn,
    check_mlp,
)
from nnr_profile.workloads.registry import BuildContext, register_workload

IMAGENET = {"input_shape": (3, 224, 224), "num_classes": 1000, "input_kind": "image"}

TORCHVISION_MODELS: dict[str, int] = {
    "resnet18": 32,
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
    "efficientnet_b4": 32,
    "efficientnet_b7": 32,
}
"""torchvision model name -> smallest image side it accepts."""


def _torchvision_builder(name: str):
    def build(ctx: BuildContext) -> Any:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=ctx.num_classes)

    build.__doc__ = f"torchvision {name}, random init, synthetic ImageNet-shaped batches."
    return build


for _name, _min_side in TORCHVISION_MODELS.items():
    register_workload("torch", _name, min_image_size=_min_side, **IMAGENET)(
        _torchvision_builder(_name)
    )


INCEPTION_AUX_MIN_SIDE = 299


def _check_inception(args: dict[str, Any], image_size: int | None) -> None:
    side = image_size or INCEPTION_AUX_MIN_SIDE
    if args["aux_logits"] and side < INCEPTION_AUX_MIN_SIDE:
        raise UsageError(
            f"inception_v3 with aux_logits needs --image-size >= {INCEPTION_AUX_MIN_SIDE}; "
            "pass --workload-arg aux_logits=false for smaller images"
        )


@register_workload(
    "torch",
    "inception_v3",
    input_shape=(3, 299, 299),
    num_classes=1000,
    min_image_size=75,
    params={"aux_logits": True},
    check_args=_check_inception,
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
        raise UsageError(f"vit_b_16 needs --image-size divisible by 16, not {image_size}")


@register_workload("torch", "vit_b_16", min_image_size=16, check_args=_check_vit, **IMAGENET)
def build_vit_b_16(ctx: BuildContext) -> Any:
    """torchvision vit_b_16 (transformer, 16x16 patches)."""
    import torchvision

    return torchvision.models.vit_b_16(
        weights=None, num_classes=ctx.num_classes, image_size=ctx.input_shape[-1]
    )


@register_workload(
    "torch",
    "smallcnn",
    input_shape=(3, 32, 32),
    num_classes=10,
    min_image_size=4,
    params={"bn": False},
)
def build_smallcnn(ctx: BuildContext) -> Any:
    """The study's small CNN: conv3x3 16/32/32 (BatchNorm if bn), GAP, dense 32, dense 10."""
    from torch import nn

    layers: list[nn.Module] = []
    channels = [ctx.input_shape[0], 16, 32, 32]
    for c_in, c_out in itertools.pairwise(channels):
        layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
        if ctx.args["bn"]:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU())
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, ctx.num_classes),
    )


@register_workload(
    "torch",
    "mediumcnn",
    min_image_size=64,
    params={"kernel": 3},
    check_args=check_mediumcnn,
    **IMAGENET,
)
def build_mediumcnn(ctx: BuildContext) -> Any:
    """The study's medium CNN: 6 x (conv kxk, BatchNorm, ReLU, maxpool), 16->512 ch, GAP, dense."""
    from torch import nn

    kernel = int(ctx.args["kernel"])
    channels = [ctx.input_shape[0], 16, 32, 64, 128, 256, 512]
    blocks: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        blocks += [
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
    return nn.Sequential(
        *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, ctx.num_classes)
    )


@register_workload(
    "torch",
    "lenet",
    input_shape=(1, 28, 28),
    num_classes=10,
    min_image_size=28,
    params={"dropout": 0.0, "conv_dropout": 0.0},
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
    params={"norm": "none", "dropout": 0.0},
    check_args=check_mlp,
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
    params={"d_model": 128, "heads": 4, "layers": 2},
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
    params={"overhead": 0.2, "layers": 20},
    applies_knobs=False,
    check_args=check_calibrate,
)
def build_calibrate(ctx: BuildContext) -> Any:
    """Known truth: `layers` equal Linear layers; deterministic mode adds overhead x layers more.

    Every layer does the same work, so deterministic mode costs `overhead` more by construction;
    no determinism knob is set (they have costs of their own), so the report should recover it.
    """
    from torch import nn

    width = ctx.input_shape[0]
    count = int(ctx.args["layers"])
    if ctx.mode == "deterministic":
        count += calibrate_extra_layers(dict(ctx.args))
    layers: list[nn.Module] = []
    for _ in range(count):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)
