"""Collectors: what observes a trial, and the name -> collector registry.

A collector has two sides. In the trial process it brackets the timed region and each
iteration (`timed_region`, `iteration`) and may add to the result afterwards (`collect`). In the
launching process it may wrap the trial's command (`command_prefix`, `environment`) and read
what the wrapped run left behind (`finish`). `timing` is always on; every other collector runs
in trials of its own so timing trials stay unperturbed.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nnr_profile.core.errors import UsageError

if TYPE_CHECKING:
    from nnr_profile.core.specs import TrialResult, TrialSpec


class Collector:
    """A collector with no effect; subclasses override the hooks they need."""

    name: ClassVar[str] = "timing"
    kernel_level: ClassVar[bool] = False
    description: ClassVar[str] = "per-iteration wall time (CUDA events on GPU, perf_counter on CPU)"

    def check(self, framework: str, gpus: Sequence[dict[str, Any] | None]) -> None:
        """Raise a UsageError when this collector cannot run for `framework` on these GPUs."""

    def command_prefix(self, artifact_base: Path) -> list[str]:
        """Launcher side: the command that wraps `python -m nnr_profile.runner.trial`."""
        return []

    def environment(self) -> dict[str, str]:
        """Launcher side: extra environment for the trial process."""
        return {}

    def timed_region(self, spec: TrialSpec) -> Any:
        """Trial side: a context manager around all timed iterations."""
        return nullcontext()

    def iteration(self, index: int) -> Any:
        """Trial side: a context manager around one timed iteration."""
        return nullcontext()

    def collect(self, result: TrialResult, artifact_base: Path) -> None:
        """Trial side, after the timed loop: add kernels or artifacts to `result`."""

    def finish(self, result: TrialResult, artifact_base: Path) -> None:
        """Launcher side, after the trial process ended: read what the wrapper recorded."""


ARTIFACT_DIR_ENV = "NNR_PROFILE_ARTIFACT_DIR"


def artifact_base(spec: TrialSpec, folder: Path) -> Path:
    """Where a trial's collector files go: `folder`/<framework>-<workload>-<mode>-<device>-..."""
    mode = spec.mode.name.replace("+", "_")
    return folder / (
        f"{spec.framework}-{spec.workload}-{mode}-{spec.device_label}-r{spec.repeat}-"
        f"{spec.collector}-{spec.cell_key[:8]}"
    )


COLLECTORS: dict[str, type[Collector]] = {"timing": Collector}


def register_collector(cls: type[Collector]) -> type[Collector]:
    """Class decorator: make `cls` available as `--collector cls.name`."""
    COLLECTORS[cls.name] = cls
    return cls


def get_collector(name: str) -> Collector:
    """A fresh collector instance by name."""
    _load_builtin()
    if name not in COLLECTORS:
        raise UsageError(f"unknown collector {name!r}: use {', '.join(COLLECTORS)}")
    return COLLECTORS[name]()


def parse_collectors(text: str) -> list[str]:
    """--collector value -> collector names, `timing` first and always present."""
    _load_builtin()
    names = ["timing"]
    for name in (n.strip() for n in text.split(",")):
        if name and name not in names:
            get_collector(name)
            names.append(name)
    return names


def _load_builtin() -> None:
    from nnr_profile.collectors import (  # noqa: F401
        nsys,
        nvprof,
        tf_profiler,
        torch_profiler,
    )
