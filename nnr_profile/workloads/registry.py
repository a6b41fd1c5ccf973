"""The workload registry: (framework, name) -> Workload, filled by a decorator and entry points.

Registering a workload never imports its framework: builders import it when called, so
`nnr-profile list` and option checking stay fast and work without torch or TensorFlow.

A user's own workload is one function away::

    from nnr_profile.workloads import register_workload

    @register_workload("torch", "mynet", input_shape=(3, 32, 32), num_classes=10)
    def build(ctx):
        import torch.nn as nn
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

and exposed to the CLI with an entry point in the user's package::

    [project.entry-points."nnr_profile.workloads"]
    mynet = "mypackage.workloads"
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from nnr_profile.core.errors import UsageError

FRAMEWORKS = ("torch", "tf")
INPUT_KINDS = ("image", "tokens", "features")
ENTRY_POINT_GROUP = "nnr_profile.workloads"
BUILTIN_MODULES = ("nnr_profile.workloads.torch.models", "nnr_profile.workloads.tf.models")


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets: resolved workload arguments, the trial's mode name and input shape."""

    args: Mapping[str, Any]
    mode: str
    input_shape: tuple[int, ...]
    num_classes: int


@dataclass(frozen=True)
class Workload:
    """A named training setup: framework, model builder, input, loss, optimizer, batch size.

    `input_shape` excludes the batch dimension; for `image` inputs it is (C, H, W) in PyTorch
    and (H, W, C) in TensorFlow, and `--image-size` replaces H and W. `tokens` inputs are
    (sequence_length,) integer ids below `num_classes`; the loss is then per token.
    `applies_knobs=False` records the mode but sets no framework knob (for `calibrate`, whose
    modes must differ only by the work it injects).
    """

    framework: str
    name: str
    builder: Callable[[BuildContext], Any]
    input_shape: tuple[int, ...]
    num_classes: int = 1000
    input_kind: str = "image"
    default_batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    params: Mapping[str, Any] = field(default_factory=dict)
    min_image_size: int = 1
    check_args: Callable[[dict[str, Any], int | None], Any] | None = None
    applies_knobs: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {FRAMEWORKS}, not {self.framework!r}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, not {self.input_kind!r}")

    @property
    def key(self) -> tuple[str, str]:
        """The registry key (framework, name)."""
        return (self.framework, self.name)

    def resolve_args(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated by `overrides`; an unknown key is a UsageError naming the valid ones."""
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            valid = ", ".join(f"{k} (default {v!r})" for k, v in self.params.items()) or "none"
            raise UsageError(
                f"workload {self.framework}/{self.name} has no argument {', '.join(unknown)}; "
                f"its arguments are: {valid}"
            )
        return {**self.params, **overrides}

    def validate(self, overrides: Mapping[str, Any], image_size: int | None) -> dict[str, Any]:
        """Resolved arguments after every check a trial would otherwise fail on late."""
        args = self.resolve_args(overrides)
        self.shape_for(image_size)
        if self.check_args is not None:
            self.check_args(args, image_size)
        return args

    def shape_for(self, image_size: int | None) -> tuple[int, ...]:
        """The input shape with the image side replaced by `image_size` (images only)."""
        if image_size is None or self.input_kind != "image":
            return tuple(self.input_shape)
        if image_size < self.min_image_size:
            raise UsageError(
                f"{self.name} needs --image-size of at least {self.min_image_size}, "
                f"not {image_size}"
            )
        if self.framework == "tf":
            return (image_size, image_size, self.input_shape[-1])
        return (self.input_shape[0], image_size, image_size)


_REGISTRY: dict[tuple[str, str], Workload] = {}
_loaded = False


def register_workload(
    framework: str, name: str, **fields: Any
) -> Callable[[Callable[[BuildContext], Any]], Callable[[BuildContext], Any]]:
    """Decorator: register `builder(ctx) -> model` as workload `name` for `framework`."""

    def decorate(builder: Callable[[BuildContext], Any]) -> Callable[[BuildContext], Any]:
        description = fields.pop("description", None) or (builder.__doc__ or "").strip()
        workload = Workload(framework, name, builder, description=description, **fields)
        _REGISTRY[workload.key] = workload
        return builder

    return decorate


def load_workloads() -> dict[tuple[str, str], Workload]:
    """All registered workloads: built-ins plus the `nnr_profile.workloads` entry points."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:  # a broken plugin must not break the tool
                raise UsageError(
                    f"workload plugin {ep.name!r} ({ep.value}) failed to import: {exc}"
                ) from exc
    return dict(_REGISTRY)


ALIASES: dict[str, str] = {
    "inceptionv3": "inception_v3",
    "mobilenetv2": "mobilenet_v2",
    "mobilenetv3large": "mobilenet_v3_large",
    **{f"efficientnetb{i}": f"efficientnet_b{i}" for i in (0, 1, 2, 4, 7)},
}
"""The study's Keras spellings -> the shared workload names (one name per architecture, so
PyTorch and TensorFlow rows of the same model line up in the report)."""


def canonical_name(name: str) -> str:
    """The registered name for `name` (the study's Keras spellings are accepted too)."""
    return ALIASES.get(name, name)


def get_workload(framework: str, name: str) -> Workload:
    """The workload, or a UsageError listing the close names."""
    registry = load_workloads()
    name = canonical_name(name)
    if (framework, name) in registry:
        return registry[(framework, name)]
    names = sorted({n for (_, n) in registry})
    if name in names:
        where = sorted(f for (f, n) in registry if n == name)
        raise UsageError(f"workload {name!r} exists for {', '.join(where)} but not for {framework}")
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; 'nnr-profile list' shows all"
    raise UsageError(f"unknown model {name!r}{hint}")


def frameworks_for(name: str) -> list[str]:
    """The frameworks that have workload `name`."""
    name = canonical_name(name)
    return sorted(f for (f, n) in load_workloads() if n == name)


def parse_workload_args(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> dict, values read as int, float, bool, or left as strings."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--workload-arg {pair!r} is not KEY=VALUE (e.g. overhead=0.2)")
        args[key] = _parse_value(raw.strip())
    return args


def _parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
