"""Determinism modes as named sets of knobs, and the knob ladder.

A mode never branches the trial: it is a mapping knob -> bool, applied knob by knob.
`default` sets nothing (the framework's own defaults); `fast` turns on cuDNN autotuning;
`deterministic` turns on every knob. A ladder of partial modes is written as knob names
joined with '+', e.g. ``cudnn_deterministic+cublas_workspace``: those knobs on, the rest off.

This module knows knob names only. What a knob sets in a framework (environment variables,
version checks, API calls) lives with that framework: `nnr_profile.workloads.torch.knobs`,
`nnr_profile.workloads.tf.knobs`, `nnr_profile.workloads.jax.knobs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nnr_profile.core.errors import UsageError

KNOBS: dict[str, str] = {
    "cublas_workspace": "deterministic cuBLAS workspace (PyTorch and TensorFlow)",
    "cudnn_deterministic": "deterministic cuDNN algorithms only (PyTorch)",
    "cudnn_benchmark": "cuDNN autotuning (PyTorch; off when deterministic)",
    "deterministic_algorithms": "deterministic implementations of every op (PyTorch)",
    "fill_uninitialized_memory": "new tensors filled, with deterministic_algorithms (PyTorch)",
    "tf_op_determinism": "op determinism (TensorFlow)",
    "xla_deterministic_ops": "deterministic XLA GPU ops only; compiling others fails (JAX)",
    "xla_autotune_off": "XLA's GPU autotuning off (JAX)",
}
"""Knob name -> what it does; what each sets in a framework is in that framework's knobs.py."""

FRAMEWORK_KNOBS: dict[str, frozenset[str]] = {
    "torch": frozenset(KNOBS) - {"tf_op_determinism", "xla_deterministic_ops", "xla_autotune_off"},
    "tf": frozenset({"tf_op_determinism", "cublas_workspace"}),
    "jax": frozenset({"xla_deterministic_ops", "xla_autotune_off", "cublas_workspace"}),
}
"""The knobs each framework reads; a mode that turns none of them on equals `default` there."""


@dataclass(frozen=True)
class Mode:
    """A named determinism setting: the knobs it sets (knobs it does not name stay untouched)."""

    name: str
    knobs: Mapping[str, bool] = field(default_factory=dict)
    frameworks: tuple[str, ...] | None = None
    """The frameworks this mode is measured for (None: every framework)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.knobs) - set(KNOBS))
        if unknown:
            raise UsageError(
                f"mode {self.name!r} names unknown knob(s) {', '.join(unknown)}; "
                f"knobs are: {', '.join(KNOBS)}"
            )
        object.__setattr__(self, "knobs", dict(self.knobs))
        if self.frameworks is not None:
            object.__setattr__(self, "frameworks", tuple(self.frameworks))

    def is_on(self, knob: str) -> bool:
        """Whether this mode turns `knob` on."""
        return bool(self.knobs.get(knob, False))

    def to_dict(self) -> dict:
        """A JSON-ready form (name and knob values)."""
        data: dict = {"name": self.name, "knobs": dict(self.knobs)}
        if self.frameworks is not None:
            data["frameworks"] = list(self.frameworks)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> Mode:
        """The inverse of `to_dict`."""
        frameworks = data.get("frameworks")
        return cls(data["name"], dict(data["knobs"]), tuple(frameworks) if frameworks else None)


_ALL_ON = {knob: True for knob in KNOBS} | {"cudnn_benchmark": False}

MODES: dict[str, Mode] = {
    "default": Mode("default", {}),
    "fast": Mode("fast", {"cudnn_benchmark": True}),
    "deterministic": Mode("deterministic", _ALL_ON),
}

BASELINE_MODES = ("default", "fast")

LADDER_KNOBS: tuple[tuple[str, dict[str, bool]], ...] = (
    ("cublas_workspace", {"cublas_workspace": True}),
    ("cudnn_deterministic", {"cudnn_deterministic": True, "cudnn_benchmark": False}),
    ("deterministic_algorithms", {"deterministic_algorithms": True}),
)
"""The knob ladder: each step adds these knobs to the one before; `deterministic` follows
the last step (PyTorch: it adds `fill_uninitialized_memory`; TensorFlow: op determinism)."""


def ladder() -> list[Mode]:
    """The cumulative knob ladder: default, step1_cublas_workspace, step2_cudnn_deterministic,
    step3_deterministic_algorithms, deterministic (step 3 plus the remaining knobs).

    Each step adds the knob it names to the step before (no name begins with '+', so the
    names survive the CSV formula guard unchanged). A step runs for the frameworks that read
    every knob it turns on: step 1 (cublas_workspace) for both, steps 2 and 3 for PyTorch, so
    TensorFlow's ladder is default -> step1_cublas_workspace -> deterministic.
    """
    steps = [MODES["default"]]
    knobs: dict[str, bool] = {}
    for number, (knob, added) in enumerate(LADDER_KNOBS, start=1):
        knobs = {**knobs, **added}
        on = {name for name, value in knobs.items() if value}
        frameworks = tuple(fw for fw, read in FRAMEWORK_KNOBS.items() if on <= read)
        every = len(frameworks) == len(FRAMEWORK_KNOBS)
        steps.append(Mode(f"step{number}_{knob}", knobs, None if every else frameworks))
    steps.append(MODES["deterministic"])
    return steps


def ladder_order(names: list[str]) -> list[str]:
    """Mode names in ladder order (default, fast, the steps, deterministic), others after."""
    order = ["default", "fast"] + [m.name for m in ladder()[1:]]
    ranked = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda n: (ranked.get(n, len(order)), n))


def parse_mode(text: str) -> Mode:
    """A mode from its name (default, fast, deterministic) or a '+'-joined knob ladder step."""
    text = text.strip()
    if text in MODES:
        return MODES[text]
    steps = {m.name: m for m in ladder()}
    if text in steps:
        return steps[text]
    parts = [p.strip() for p in text.split("+") if p.strip()]
    if parts and all(p in KNOBS for p in parts):
        if "fill_uninitialized_memory" in parts and "deterministic_algorithms" not in parts:
            raise UsageError(
                f"mode {text!r}: fill_uninitialized_memory does nothing in PyTorch without "
                "deterministic_algorithms; add +deterministic_algorithms"
            )
        return Mode(text, {knob: knob in parts for knob in KNOBS})
    raise UsageError(
        f"unknown mode {text!r}: use {', '.join(MODES)}, ladder, or knobs joined with '+' "
        f"from: {', '.join(KNOBS)}"
    )


def parse_modes(text: str) -> list[Mode]:
    """Modes from a comma-separated list, in order, without repeats; `ladder` expands in place."""
    names = [t for t in (s.strip() for s in text.split(",")) if t]
    if not names:
        raise UsageError("modes is empty: give e.g. default,deterministic")
    modes: list[Mode] = []
    for name in names:
        for mode in ladder() if name == "ladder" else [parse_mode(name)]:
            if mode.name not in [m.name for m in modes]:
                modes.append(mode)
    return modes


def same_as_default(mode: Mode, framework: str) -> bool:
    """Whether `mode` sets nothing `framework` reads, so it would measure `default` again.

    TensorFlow's `fast` is the case in point: TF autotunes cuDNN by default, and
    `cudnn_benchmark` is a PyTorch knob.
    """
    if mode.name == "default":
        return False
    if mode.frameworks is not None and framework not in mode.frameworks:
        return True
    return not any(mode.is_on(k) for k in FRAMEWORK_KNOBS[framework])


def same_as_default_note(framework: str, modes: list[Mode]) -> str | None:
    """A line for the user naming the modes not run for `framework` because they equal default."""
    foreign = [m.name for m in modes if m.frameworks is not None and framework not in m.frameworks]
    skipped = [m.name for m in modes if same_as_default(m, framework) and m.name not in foreign]
    lines = []
    if skipped:
        why = (
            "TensorFlow autotunes already" if framework == "tf" else "it reads none of these knobs"
        )
        lines.append(
            f"{framework}: {', '.join(skipped)} = default ({why}); not measured twice, so "
            f"{framework} rows compare with default only"
        )
    if foreign:
        lines.append(f"{framework}: {', '.join(foreign)} are steps of another framework's ladder")
    return "; ".join(lines) or None
