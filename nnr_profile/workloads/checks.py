"""Argument checks shared by a workload's twins, so torch and tf reject the same values alike."""

from __future__ import annotations

import math
from typing import Any

from nnr_profile.core.errors import UsageError


def calibrate_extra_layers(args: dict[str, Any]) -> int:
    """How many extra layers `calibrate` adds in deterministic mode (overhead x layers)."""
    extra = float(args["overhead"]) * int(args["layers"])
    if extra < 0 or abs(extra - round(extra)) > 1e-9:
        raise UsageError(
            f"calibrate overhead {args['overhead']} times layers {args['layers']} must be a "
            "whole non-negative number of layers; change --workload-arg layers=..."
        )
    return round(extra)


def check_calibrate(args: dict[str, Any], image_size: int | None) -> None:
    """`check_args` for calibrate: overhead x layers must be a whole number of layers."""
    calibrate_extra_layers(args)


def check_mediumcnn(args: dict[str, Any], image_size: int | None) -> None:
    """`check_args` for mediumcnn: the kernel side is 1, 3, 5 or 7."""
    if args["kernel"] not in (1, 3, 5, 7):
        raise UsageError(f"mediumcnn kernel must be 1, 3, 5 or 7, not {args['kernel']!r}")


def check_mlp(args: dict[str, Any], image_size: int | None) -> None:
    """`check_args` for mlp: norm is none, batch or layer."""
    if args["norm"] not in ("none", "batch", "layer"):
        raise UsageError(f"mlp norm must be none, batch or layer, not {args['norm']!r}")


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
