"""Turn --model and --framework into (framework, workload) pairs, with notes on what was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from nnr_profile.core.errors import ParameterError
from nnr_profile.workloads.adapter import INSTALL_HINTS, framework_available, require_framework
from nnr_profile.workloads.registry import (
    FRAMEWORKS,
    canonical_name,
    frameworks_for,
    get_workload,
)


@dataclass
class Selection:
    """The workloads to run and messages for the user (frameworks skipped and why)."""

    workloads: tuple[tuple[str, str], ...]
    notes: list[str] = field(default_factory=list)


def select_workloads(models: str, framework: str) -> Selection:
    """Resolve comma-separated `models` for `framework` ('torch', 'tf' or 'all').

    A model named twice (also by another spelling, e.g. inceptionv3 and inception_v3) runs once;
    a note says so.
    """
    given = [canonical_name(m.strip()) for m in models.split(",") if m.strip()]
    if not given:
        raise ParameterError("model", "is empty: give e.g. resnet50")
    names = list(dict.fromkeys(given))
    repeated = [name for name in names if given.count(name) > 1]
    notes = (
        [f"model {', '.join(repeated)} named more than once: each runs once"] if repeated else []
    )
    framework = framework_choice(framework)
    if framework != "all":
        for name in names:
            get_workload(framework, name)
        require_framework(framework)
        return Selection(tuple((framework, name) for name in names), notes)

    installed = [f for f in FRAMEWORKS if framework_available(f)]
    notes += [
        f"skipping {f}: not installed ({INSTALL_HINTS[f]})"
        for f in FRAMEWORKS
        if f not in installed
    ]
    pairs: list[tuple[str, str]] = []
    for name in names:
        have = frameworks_for(name)
        if not have:
            get_workload(FRAMEWORKS[0], name)
        runnable = [f for f in have if f in installed]
        if not runnable:
            require_framework(have[0])
        pairs += [(f, name) for f in runnable]
    return Selection(tuple(pairs), notes)


def framework_choice(framework: str) -> str:
    """`framework` normalised ('torch', 'tf' or 'all'); a ParameterError for anything else."""
    framework = framework.strip().lower()
    if framework not in (*FRAMEWORKS, "all"):
        raise ParameterError(
            "framework",
            "{value!r} is not known: use {choices} or all",
            value=framework,
            choices=", ".join(FRAMEWORKS),
        )
    return framework
