"""Determinism modes as named sets of knobs, and the environment each needs.

A mode never branches the trial: it is a mapping knob -> bool, applied knob by knob.
`default` sets nothing (the framework's own defaults); `fast` turns on cuDNN autotuning;
`deterministic` turns on every knob. A ladder of partial modes is written as knob names
joined with '+', e.g. ``cudnn_deterministic+cublas_workspace``: those knobs on, the rest off.

Environment variables must be in place before the framework initialises its GPU context,
so `mode_env` is applied to the trial's process environment; each framework's own knob code
(`nnr_profile.workloads.torch.knobs`, `nnr_profile.workloads.tf.knobs`) runs before any tensor
is created.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

from nnr_profile.core.errors import UsageError

KNOBS: dict[str, str] = {
    "cublas_workspace": "CUBLAS_WORKSPACE_CONFIG=:4096:8 (deterministic cuBLAS reductions)",
    "cudnn_deterministic": "torch.backends.cudnn.deterministic = True",
    "cudnn_benchmark": "torch.backends.cudnn.benchmark (autotuning; off when deterministic)",
    "deterministic_algorithms": "torch.use_deterministic_algorithms(True)",
    "fill_uninitialized_memory": "torch.utils.deterministic.fill_uninitialized_memory (torch>=2.1)",
    "tf_op_determinism": "tf.config.experimental.enable_op_determinism() / TF_DETERMINISTIC_OPS",
}

CUBLAS_WORKSPACE_CONFIG = ":4096:8"

FRAMEWORK_KNOBS: dict[str, frozenset[str]] = {
    "torch": frozenset(KNOBS) - {"tf_op_determinism"},
    "tf": frozenset({"tf_op_determinism", "cublas_workspace"}),
}
"""The knobs each framework reads; a mode that turns none of them on equals `default` there."""

TF_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tensorflow-macos",
    "tf-nightly",
)
TF_OP_DETERMINISM_SINCE = (2, 8)


@dataclass(frozen=True)
class Mode:
    """A named determinism setting: the knobs it sets (knobs it does not name stay untouched)."""

    name: str
    knobs: Mapping[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.knobs) - set(KNOBS))
        if unknown:
            raise UsageError(
                f"mode {self.name!r} names unknown knob(s) {', '.join(unknown)}; "
                f"knobs are: {', '.join(KNOBS)}"
            )
        object.__setattr__(self, "knobs", dict(self.knobs))

    def is_on(self, knob: str) -> bool:
        """Whether this mode turns `knob` on."""
        return bool(self.knobs.get(knob, False))

    def to_dict(self) -> dict:
        """A JSON-ready form (name and knob values)."""
        return {"name": self.name, "knobs": dict(self.knobs)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Mode:
        """The inverse of `to_dict`."""
        return cls(name=data["name"], knobs=dict(data["knobs"]))


_ALL_ON = {knob: True for knob in KNOBS} | {"cudnn_benchmark": False}

MODES: dict[str, Mode] = {
    "default": Mode("default", {}),
    "fast": Mode("fast", {"cudnn_benchmark": True}),
    "deterministic": Mode("deterministic", _ALL_ON),
}

BASELINE_MODES = ("default", "fast")


def parse_mode(text: str) -> Mode:
    """A mode from its name (default, fast, deterministic) or a '+'-joined knob ladder step."""
    text = text.strip()
    if text in MODES:
        return MODES[text]
    parts = [p.strip() for p in text.split("+") if p.strip()]
    if parts and all(p in KNOBS for p in parts):
        return Mode(text, {knob: knob in parts for knob in KNOBS})
    raise UsageError(
        f"unknown mode {text!r}: use {', '.join(MODES)}, or knobs joined with '+' "
        f"from: {', '.join(KNOBS)}"
    )


def parse_modes(text: str) -> list[Mode]:
    """Modes from a comma-separated list, in order, without repeats."""
    names = [t for t in (s.strip() for s in text.split(",")) if t]
    if not names:
        raise UsageError("--modes is empty: give e.g. --modes default,deterministic")
    modes: list[Mode] = []
    for name in names:
        mode = parse_mode(name)
        if mode.name not in [m.name for m in modes]:
            modes.append(mode)
    return modes


def same_as_default(mode: Mode, framework: str) -> bool:
    """Whether `mode` sets nothing `framework` reads, so it would measure `default` again.

    TensorFlow's `fast` is the case in point: TF autotunes cuDNN by default, and
    `cudnn_benchmark` is a PyTorch knob.
    """
    return mode.name != "default" and not any(mode.is_on(k) for k in FRAMEWORK_KNOBS[framework])


def same_as_default_note(framework: str, modes: list[Mode]) -> str | None:
    """A line for the user naming the modes not run for `framework` because they equal default."""
    skipped = [mode.name for mode in modes if same_as_default(mode, framework)]
    if not skipped:
        return None
    why = "TensorFlow autotunes already" if framework == "tf" else "it reads none of these knobs"
    return (
        f"{framework}: {', '.join(skipped)} = default ({why}); not measured twice, so "
        f"{framework} rows compare with default only"
    )


@cache
def tf_has_op_determinism() -> bool:
    """Whether the installed TensorFlow (read from its metadata, not imported) is 2.8 or newer."""
    for name in TF_DISTRIBUTIONS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        numbers = re.findall(r"\d+", version)[:2]
        return tuple(int(n) for n in numbers) >= TF_OP_DETERMINISM_SINCE
    return False


def mode_env(mode: Mode, framework: str) -> dict[str, str]:
    """Environment variables the mode needs before the framework starts (empty when none).

    TensorFlow gets TF_DETERMINISTIC_OPS / TF_CUDNN_DETERMINISTIC only where it is older than
    2.8; newer versions are made deterministic by `apply_tf_mode` (enable_op_determinism), so
    a workload that sets no knob (calibrate) stays untouched.
    """
    env: dict[str, str] = {}
    if mode.is_on("cublas_workspace"):
        env["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    if framework == "tf" and mode.is_on("tf_op_determinism") and not tf_has_op_determinism():
        env["TF_DETERMINISTIC_OPS"] = "1"
        env["TF_CUDNN_DETERMINISTIC"] = "1"
    return env
