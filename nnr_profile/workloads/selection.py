"""Turn --model and --framework into (framework, workload) pairs, with notes on what was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from nnr_profile.core.errors import UsageError
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
    """Resolve comma-separated `models` for `framework` ('torch', 'tf' or 'all')."""
    names = [canonical_name(m.strip()) for m in models.split(",") if m.strip()]
    if not names:
        raise UsageError("--model is empty: give e.g. --model resnet50")
    framework = framework.strip().lower()
    if framework not in (*FRAMEWORKS, "all"):
        raise UsageError(f"unknown --framework {framework!r}: use {', '.join(FRAMEWORKS)} or all")
    if framework != "all":
        for name in names:
            get_workload(framework, name)
        require_framework(framework)
        return Selection(tuple((framework, name) for name in names))

    installed = [f for f in FRAMEWORKS if framework_available(f)]
    notes = [
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
