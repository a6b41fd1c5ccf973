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
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nnr_profile.core.errors import MissingDependencyError, ParameterError, UsageError
from nnr_profile.core.params import Range
from nnr_profile.core.registry import Registry
from nnr_profile.workloads.recipes import Recipe, legacy_recipe

FRAMEWORKS = ("torch", "tf", "jax")
CHANNELS_LAST = ("tf", "jax")
"""The frameworks whose image inputs are (H, W, C)."""
INPUT_KINDS = ("image", "tokens", "features")
ENTRY_POINT_GROUP = "nnr_profile.workloads"
BUILTIN_MODULES = (
    "nnr_profile.workloads.torch.models",
    "nnr_profile.workloads.tf.models",
    "nnr_profile.workloads.jax.models",
)


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
ARG_KINDS = (bool, int, float, str)


@dataclass(frozen=True)
class Arg:
    """One workload argument, declared once: its type, default and allowed values.

    `kind` is bool, int, float or str (None: any value, for a plugin's untyped default);
    numbers are finite and within `min`..`max` (`max_open`: `max` itself excluded); `choices`
    lists the only values allowed.
    """

    name: str
    kind: type | None
    default: Any
    min: float | None = None
    max: float | None = None
    max_open: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (*ARG_KINDS, None):
            raise ValueError(f"argument {self.name}: kind must be one of {ARG_KINDS} or None")
        if self.default is not None and self.convert(self.default) is _INVALID:
            raise ValueError(f"argument {self.name}: default {self.default!r} is not allowed")

    @classmethod
    def inferred(cls, name: str, default: Any) -> Arg:
        """An argument typed by its default (a plugin's `params={name: default}`)."""
        return cls(name, type(default) if type(default) in ARG_KINDS else None, default)

    def describe(self) -> str:
        """The allowed values in words (e.g. 'a whole number of at least 1')."""
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind in (int, float):
            return self._range().describe()
        return "text" if self.kind is str else "any value"

    def convert(self, value: Any) -> Any:
        """`value` as this argument's kind, or `_INVALID` when it has another type or range."""
        converted = _CONVERTERS[self.kind](value) if self.kind is not None else value
        if converted is _INVALID:
            return _INVALID
        if self.kind in (int, float) and not self._range().contains(converted):
            return _INVALID
        if self.choices and converted not in self.choices:
            return _INVALID
        return converted

    def _range(self) -> Range:
        return Range(self.kind is int, self.min, self.max, max_open=self.max_open)


_INVALID = object()


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    return True if text in TRUE_WORDS else False if text in FALSE_WORDS else _INVALID


def _to_int(value: Any) -> Any:
    if isinstance(value, str):
        value = _parse_value(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID


def _to_float(value: Any) -> Any:
    if isinstance(value, str):
        value = _parse_value(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _INVALID
    return float(value)


def _to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
}


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets: resolved workload arguments, the trial's mode name, input shape,
    classes and the mode's knobs (knob -> on), for a builder that depends on one."""

    args: Mapping[str, Any]
    mode: str
    input_shape: tuple[int, ...]
    num_classes: int
    knobs: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """A named training setup: framework, model builder, input, loss, optimizer, batch size.

    `input_shape` excludes the batch dimension; for `image` inputs it is (C, H, W) in PyTorch
    and (H, W, C) in TensorFlow and JAX, and `--image-size` replaces H and W. `tokens` inputs are
    (sequence_length,) integer ids below `num_classes`; the loss is then per token.
    `applies_knobs=False` records the mode but sets no framework knob (for `calibrate`, whose
    modes must differ only by the work it injects). Arguments are declared once, as `arguments`
    (typed, with ranges) or as plain `params` defaults (typed by the default); `check_args`
    adds checks across arguments (e.g. heads dividing d_model). `requires` names modules the
    builder needs beyond the framework (e.g. timm), `install_hint` the line that installs them.
    `recipe` is how it trains (`nnr_profile.workloads.recipes`; default: `optimizer` and
    `learning_rate` with SGD momentum 0.9 and a cosine schedule), and then sets `optimizer` and
    `learning_rate`; `layout` names whose layer structure the model follows: `study` (the
    study's Keras layers, twin for twin), `twin` (one structure in both frameworks),
    `torchvision`, `keras.applications` or `timm` (each framework's library model).
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
    arguments: tuple[Arg, ...] = ()
    min_image_size: int = 1
    check_args: Callable[[dict[str, Any], int | None], Any] | None = None
    applies_knobs: bool = True
    description: str = ""
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    recipe: Recipe | None = None
    layout: str = "twin"

    def __post_init__(self) -> None:
        if self.recipe is None:
            object.__setattr__(self, "recipe", legacy_recipe(self.optimizer, self.learning_rate))
        else:
            object.__setattr__(self, "optimizer", self.recipe.optimizer)
            object.__setattr__(self, "learning_rate", self.recipe.learning_rate)
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {FRAMEWORKS}, not {self.framework!r}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, not {self.input_kind!r}")
        defaults = {a.name: a.default for a in self.arguments}
        if self.arguments and self.params and dict(self.params) != defaults:
            raise ValueError(f"{self.name}: declare arguments or params, not both")
        if self.arguments:
            object.__setattr__(self, "params", defaults)
        else:
            arguments = tuple(Arg.inferred(k, v) for k, v in self.params.items())
            object.__setattr__(self, "arguments", arguments)

    @property
    def key(self) -> tuple[str, str]:
        """The registry key (framework, name)."""
        return (self.framework, self.name)

    def recipe_record(self, learning_rate: float | None = None) -> dict[str, Any]:
        """The recipe as a trial or replica records it (`learning_rate`: the base rate it ran)."""
        record = self.recipe.to_dict()
        if learning_rate is not None:
            record["learning_rate"] = learning_rate
        return record

    def classes_for(self, args: Mapping[str, Any]) -> int:
        """The number of outputs with resolved `args` (a `classes` argument overrides)."""
        return int(args.get("classes", self.num_classes))

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
        """Resolved, type-converted arguments after every check that would fail a trial late.

        Each argument's type and range, the image size, then `check_args` across arguments.
        """
        self.require()
        args = self.resolve_args(overrides)
        for arg in self.arguments:
            converted = arg.convert(args[arg.name])
            if converted is _INVALID:
                raise UsageError(
                    f"{self.framework}/{self.name} argument {arg.name} must be {arg.describe()}, "
                    f"not {args[arg.name]!r}"
                )
            args[arg.name] = converted
        self.shape_for(image_size)
        if self.check_args is not None:
            self.check_args(args, image_size)
        return args

    def missing_requirements(self) -> list[str]:
        """The modules in `requires` that cannot be imported here (without importing them)."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    def require(self) -> None:
        """Raise a MissingDependencyError naming the install line when a requirement is absent."""
        missing = self.missing_requirements()
        if missing:
            raise MissingDependencyError(
                f"{self.framework}/{self.name} needs {', '.join(missing)}, which is not "
                f"installed; install it with: {self.install_hint or 'pip install ' + missing[0]}"
            )

    def shape_for(self, image_size: int | None) -> tuple[int, ...]:
        """The input shape with the image side replaced by `image_size` (images only)."""
        if image_size is None or self.input_kind != "image":
            return tuple(self.input_shape)
        if image_size < self.min_image_size:
            raise ParameterError(
                "image_size",
                "must be at least {least} for {name}, not {value}",
                least=self.min_image_size,
                name=self.name,
                value=image_size,
            )
        if self.framework in CHANNELS_LAST:
            return (image_size, image_size, self.input_shape[-1])
        return (self.input_shape[0], image_size, image_size)


def _workload_problem(name: str, entry: Any) -> str | None:
    """Why an entry point's object is not a workload (None: it is one)."""
    if isinstance(entry, Workload):
        return None
    return "is not a Workload: name the module that registers the workloads"


WORKLOADS: Registry[Workload] = Registry(
    "workload", modules=BUILTIN_MODULES, group=ENTRY_POINT_GROUP, check=_workload_problem
)
"""Workloads by 'framework/name': the built-in modules and the entry points register them."""


def register_workload(
    framework: str, name: str, **fields: Any
) -> Callable[[Callable[[BuildContext], Any]], Callable[[BuildContext], Any]]:
    """Decorator: register `builder(ctx) -> model` as workload `name` for `framework`."""

    def decorate(builder: Callable[[BuildContext], Any]) -> Callable[[BuildContext], Any]:
        description = fields.pop("description", None) or (builder.__doc__ or "").strip()
        workload = Workload(framework, name, builder, description=description, **fields)
        WORKLOADS.register("/".join(workload.key), workload)
        return builder

    return decorate


def load_workloads() -> dict[tuple[str, str], Workload]:
    """All registered workloads: built-ins plus the `nnr_profile.workloads` entry points.

    A plugin that fails to import is skipped and named by `broken_plugins`: one broken plugin
    must not take the other workloads down with it.
    """
    return {workload.key: workload for workload in WORKLOADS.values()}


def broken_plugins() -> list[str]:
    """One line per workload plugin that failed to import (what it is and the error)."""
    return WORKLOADS.problems()


ALIASES: dict[str, str] = {
    "inceptionv3": "inception_v3",
    "mobilenetv2": "mobilenet_v2",
    "mobilenetv3large": "mobilenet_v3_large",
    **{f"efficientnetb{i}": f"efficientnet_b{i}" for i in range(8)},
    **{f"MediumCNN {k}*{k}": f"mediumcnn_{k}x{k}" for k in (1, 3, 5, 7)},
    "resnet18": "resnet18_cifar",
}
"""The study's Keras spellings -> the shared workload names (one name per architecture, so
PyTorch and TensorFlow rows of the same model line up in the report). `resnet18` is the study's
CIFAR ResNet-18 (torchvision's ImageNet one is `resnet18_imagenet`)."""


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
    broken = "".join(f"; {line}" for line in broken_plugins())
    raise UsageError(f"unknown model {name!r}{hint}{broken}")


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
            raise ParameterError(
                "workload_args", "{pair!r} is not KEY=VALUE (e.g. overhead=0.2)", pair=pair
            )
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
