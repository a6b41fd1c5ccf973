"""Presets: the study's protocols as named option sets (`run --preset study`, `variability
--preset study-smallcnn-cifar10`, ...).

A preset sets a command's options to the study's values; an option given on the command line
still wins. The study's overhead protocol is `overhead_test.py` (every keras.applications model
it names and its MediumCNNs, at 224x224, batch 128, 100 timed batches, default against
deterministic TensorFlow; the recipe, Adam at Keras's default rate with categorical
cross-entropy on softmax outputs, is each workload's own). Its variability protocol is
`smallcnn.py` and `resnet18.py` as its README runs them: lr 4e-4 with its step decay (the
workloads' recipe), batch 128, 200 epochs, the four noise settings; and `resnet_celeba.py`:
its CIFAR ResNet-18 at 128x128 on all 40 CelebA attributes, Adam 1e-3 (x0.1 every 5 epochs),
batch 128, 10 epochs, the same four settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nnr_profile.core.registry import Registry

STUDY_OVERHEAD_MODELS = (
    "resnet50",
    "resnet101",
    "resnet152",
    "inceptionv3",
    "xception",
    "densenet121",
    "densenet169",
    "densenet201",
    "mobilenet",
    "vgg16",
    "vgg19",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "efficientnetb4",
    "efficientnetb7",
    "MediumCNN 1*1",
    "MediumCNN 3*3",
    "MediumCNN 5*5",
    "MediumCNN 7*7",
)
"""Every model `overhead_test.py` builds, in its spellings (the registry's aliases)."""
STUDY_SETTINGS = "algo+impl,algo,impl,control"


@dataclass(frozen=True)
class Preset:
    """A named set of option values for one command (`settings`: parameter name -> value)."""

    name: str
    command: str
    description: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.command not in ("run", "variability"):
            raise ValueError(f"preset {self.name!r}: no command {self.command!r}")

    def line(self) -> str:
        """'name (command): description; option=value, ...' for `list --presets`."""
        values = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.name} ({self.command}): {self.description}; {values}"


PRESETS: Registry[Preset] = Registry("preset")
"""Every preset by name."""


def register_preset(preset: Preset) -> Preset:
    """Add `preset` to PRESETS."""
    return PRESETS.register(preset.name, preset)


def presets_for(command: str) -> list[Preset]:
    """The presets of `command`, in registration order."""
    return [p for p in PRESETS.values() if p.command == command]


def preset_settings(name: str, command: str | None) -> Mapping[str, Any]:
    """The option values of preset `name` for `command` (None: any command's); a UsageError
    naming the choices."""
    from nnr_profile.core.errors import ParameterError

    preset = PRESETS.get(name)
    if command is not None and preset.command != command:
        choices = ", ".join(p.name for p in presets_for(command)) or "none"
        raise ParameterError(
            "preset", "{value!r} is a {other} preset; {command} takes {choices}",
            value=name, other=preset.command, command=command, choices=choices,
        )  # fmt: skip
    return preset.settings


register_preset(
    Preset(
        "study",
        "run",
        "the study's overhead protocol (overhead_test.py): its 20 models, TensorFlow",
        {
            "model": ",".join(STUDY_OVERHEAD_MODELS),
            "framework": "tf",
            "image_size": 224,
            "batch_size": 128,
            "iterations": 100,
            "modes": "default,deterministic",
        },
    )
)
for _model, _dataset in (
    ("smallcnn", "cifar10"),
    ("resnet18_cifar", "cifar10"),
    ("resnet18_cifar", "cifar100"),
):
    _short = _model.removesuffix("_cifar")
    register_preset(
        Preset(
            f"study-{_short}-{_dataset}",
            "variability",
            f"the study's {_short}.py on {_dataset} (its README's four noise settings)",
            {
                "model": _model,
                "framework": "tf",
                "dataset": _dataset,
                "epochs": 200,
                "batch_size": 128,
                "learning_rate": 4e-4,
                "settings": STUDY_SETTINGS,
                **({"workload_args": ("classes=100",)} if _dataset == "cifar100" else {}),
            },
        )
    )
register_preset(
    Preset(
        "study-celeba",
        "variability",
        "the study's resnet_celeba.py: all 40 CelebA attributes at 128x128 (its README's four "
        "noise settings)",
        {
            "model": "resnet18_celeba",
            "framework": "tf",
            "dataset": "celeba:all",
            "epochs": 10,
            "batch_size": 128,
            "learning_rate": 1e-3,
            "settings": STUDY_SETTINGS,
        },
    )
)
