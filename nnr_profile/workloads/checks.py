"""Arguments shared by a workload's twins, declared once, so torch and tf reject the same values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nnr_profile.core.errors import UsageError
from nnr_profile.workloads.registry import Arg


def _dropout(name: str) -> Arg:
    return Arg(name, float, 0.0, min=0, max=1, max_open=True)


SMALLCNN_ARGS = (Arg("bn", bool, False),)
MEDIUMCNN_KERNELS = (1, 3, 5, 7)
MEDIUMCNN_ARGS = (Arg("kernel", int, 3, choices=MEDIUMCNN_KERNELS),)
RESNET18_CIFAR_ARGS = (Arg("classes", int, 10, choices=(10, 100)),)
CELEBA_SIDE = 128
"""The study's CelebA image side (resnet_celeba.py resizes to 128x128)."""

LENET_ARGS = (_dropout("dropout"), _dropout("conv_dropout"))
MLP_ARGS = (Arg("norm", str, "none", choices=("none", "batch", "layer")), _dropout("dropout"))
EMBEDDING_LM_ARGS = (
    Arg("d_model", int, 128, min=1),
    Arg("heads", int, 4, min=1),
    Arg("layers", int, 2, min=1),
)
CALIBRATE_ARGS = (Arg("overhead", float, 0.2, min=0), Arg("layers", int, 20, min=1))


def mediumcnn_name(kernel: int) -> str:
    """The workload name of the study's 'MediumCNN k*k' (e.g. mediumcnn_3x3)."""
    return f"mediumcnn_{kernel}x{kernel}"


def flattened_side(side: int) -> int:
    """The study ResNet-18's side after its three stride-2 stages and AvgPool(4)."""
    for _ in range(3):
        side = -(-side // 2)
    return side // 4


def check_embedding_lm(args: dict[str, Any], image_size: int | None) -> None:
    """`check_args` for embedding_lm: the attention heads split d_model evenly."""
    d_model, heads = args["d_model"], args["heads"]
    if d_model % heads:
        fits = [h for h in range(1, min(d_model, 64) + 1) if d_model % h == 0]
        raise UsageError(
            f"embedding_lm argument heads must divide d_model ({d_model}), not {heads}; "
            f"heads that fit: {', '.join(map(str, fits))}"
        )


def training_input_shape(
    workload: Any, dataset: str, shape: tuple[int, ...], height_width: tuple[int, ...]
) -> tuple[int, ...]:
    """The shape `workload` is built with to train on `dataset`'s samples of `shape`.

    Flattened for `features` models; a UsageError for other non-image models and for images
    (`height_width`) smaller than the workload's `min_image_size`.
    """
    if workload.input_kind == "features":
        return (math.prod(shape),)
    if workload.input_kind != "image":
        raise UsageError(
            f"{workload.name} takes {workload.input_kind} inputs; variability runs need an "
            "image or features model (e.g. mlp, smallcnn, lenet, resnet18)"
        )
    if min(height_width) < workload.min_image_size:
        raise UsageError(
            f"{workload.name} needs images of at least {workload.min_image_size} pixels; "
            f"{dataset} has {height_width[0]}x{height_width[1]}: use a larger dataset or another "
            "model (mlp or smallcnn work on digits)"
        )
    return shape


def check_labels(workload: Any, info: Any) -> None:
    """A UsageError when the recipe's targets and the dataset's (a `DatasetInfo`) disagree: one
    class per example against one 0/1 target per output."""
    if workload.recipe.multi_label and not info.multi_label:
        raise UsageError(
            f"{workload.name} trains {workload.num_classes} attributes at once (sigmoid outputs, "
            f"binary cross-entropy); {info.name} has one class per example: use resnet18 "
            "(the same network with a softmax over the classes), or dataset celeba:all"
        )
    if info.multi_label and not workload.recipe.multi_label:
        raise UsageError(
            f"{info.name} has {info.num_classes} 0/1 targets per example (sigmoid outputs, "
            f"binary cross-entropy), which {workload.name}'s recipe does not train: use "
            "resnet18_celeba (the study's model for it), or celeba:ATTRIBUTE for a binary task"
        )


def check_single_label(info: Any, command: str) -> None:
    """A UsageError when `command` (an analysis of one class per example) meets a multi-label
    dataset (a `DatasetInfo`)."""
    if info.multi_label:
        raise UsageError(
            f"{command} takes a dataset of one class per example; {info.name} has "
            f"{info.num_classes} 0/1 targets per example: use celeba:ATTRIBUTE for one of them"
        )


def check_batches(
    workload: Any, args: Mapping[str, Any], batch_size: int, examples: int | None = None
) -> None:
    """A UsageError when a training batch would hold one example, which BatchNorm1d refuses."""
    # mlp norm=batch: every batch with --batch-size 1, or the last of an epoch over `examples`
    if not (workload.framework == "torch" and args.get("norm") == "batch"):
        return
    last = None if examples is None else examples % batch_size
    if batch_size == 1:
        how = "gives only such batches"
    elif last == 1:
        how = f"leaves one as the last batch of each epoch over {examples} training examples"
    else:
        return
    raise UsageError(
        f"{workload.framework}/{workload.name} with norm=batch cannot train on a batch of one "
        f"example, and --batch-size {batch_size} {how}; use another --batch-size or norm=layer"
    )
