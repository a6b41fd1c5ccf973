"""PyTorch builds of the study's models that torchvision lacks, through timm (optional extra).

`xception` and `mobilenet` (v1) exist in keras.applications; timm has both architectures
(`legacy_xception`, Chollet's original Xception as Keras builds it, and `mobilenetv1_100`,
width 1.0). Weights are random (`pretrained=False`): nothing is downloaded. timm is imported
only when a model is built, and its absence is one clear line with the install command.
"""

from __future__ import annotations

from typing import Any

from nnr_profile.core.errors import MissingDependencyError
from nnr_profile.workloads.registry import BuildContext

TIMM_INSTALL = "pip install 'nnr-profile[timm]'"
"""The line that installs timm (with the torch extra it builds on)."""

TIMM_MODELS: dict[str, tuple[str, int, int]] = {
    "xception": ("legacy_xception", 299, 32),
    "mobilenet": ("mobilenetv1_100", 224, 32),
}
"""workload name -> (timm model name, default image side (as Keras's), smallest side)."""


def import_timm() -> Any:
    """The timm module, or a MissingDependencyError naming the install line."""
    try:
        import timm
    except ImportError as exc:
        raise MissingDependencyError(
            f"this model is built by timm, which is not installed; install it with: {TIMM_INSTALL}"
        ) from exc
    return timm


def timm_builder(timm_name: str):
    """A builder: timm's `timm_name`, random init, the context's classes and channels."""

    def build(ctx: BuildContext) -> Any:
        return import_timm().create_model(
            timm_name, pretrained=False, num_classes=ctx.num_classes, in_chans=ctx.input_shape[0]
        )

    build.__doc__ = f"timm {timm_name} (needs timm), random init, synthetic ImageNet batches."
    return build
