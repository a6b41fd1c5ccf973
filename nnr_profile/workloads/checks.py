"""Argument checks shared by a workload's twins, so torch and tf reject the same values alike."""

from __future__ import annotations

from typing import Any

from nnr_profile.errors import UsageError


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
