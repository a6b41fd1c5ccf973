"""Collectors: what observes a trial, and the name -> collector registry.

The registry (`COLLECTORS`, a `core.registry.Registry`) is filled from the entry-point group
`nnr_profile.collectors` (name = class), the built-ins included (pyproject.toml), so a plugin
package adds a collector by declaring one entry point; the CLI's `--collector` help is read
from the registry.

A collector has two sides. In the trial process it brackets the timed region and each
iteration (`timed_region`, `iteration`) and may add to the result afterwards (`collect`). In the
launching process it may wrap the trial's command (`command_prefix`, `environment`) and read
what the wrapped run left behind (`finish`). `timing` is always on; every other collector runs
in trials of its own so timing trials stay unperturbed. `Collector` itself has no name: the
`timing` collector is `TimingCollector` (`timing.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nnr_profile.core.errors import NnrError
from nnr_profile.core.registry import Registry
from nnr_profile.core.text import slug

if TYPE_CHECKING:
    from nnr_profile.core.specs import TrialResult, TrialSpec
    from nnr_profile.profiler.traces import KernelStats


class Collector:
    """What every collector is: hooks with no effect; a subclass names itself and overrides
    the hooks it needs."""

    name: ClassVar[str]
    kernel_level: ClassVar[bool] = False
    description: ClassVar[str]

    def check(self, framework: str, gpus: Sequence[dict[str, Any] | None]) -> None:
        """Raise a UsageError when this collector cannot run for `framework` on these GPUs."""

    def command_prefix(self, artifact_base: Path) -> list[str]:
        """Launcher side: the command that wraps `python -m nnr_profile.profiler.runner.trial`."""
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
    """Where a trial's collector files go: `folder`/<framework>-<workload>-<mode>-<device>-...

    Every part is a file-name-safe slug, so a workload named ``../../x`` stays in `folder`.
    """
    parts = (
        spec.framework,
        spec.workload,
        spec.mode.name.replace("+", "_"),
        spec.device_label,
        f"r{spec.repeat}",
        spec.collector,
        spec.cell_key[:8],
    )
    return folder / "-".join(slug(str(part)) for part in parts)


def kernel_rows(stats: Iterable[KernelStats]) -> list[dict[str, Any]]:
    """Per-kernel statistics as the rows a trial result stores."""
    return [
        {"name": k.name, "short_name": k.short_name, "calls": k.calls, "total_ns": k.total_ns}
        for k in stats
    ]


ENTRY_POINT_GROUP = "nnr_profile.collectors"
"""Entry-point group of collector classes; the built-ins are registered through it too."""


def collector_problem(name: str, entry: Any) -> str | None:
    """Why an entry point's object is not the collector `name` (None: it is)."""
    is_collector = isinstance(entry, type) and issubclass(entry, Collector)
    if is_collector and getattr(entry, "name", None) == name:
        return None
    return f"is not a Collector subclass named {name!r}"


COLLECTORS: Registry[type[Collector]] = Registry(
    "collector", group=ENTRY_POINT_GROUP, check=collector_problem
)
BROKEN = COLLECTORS.broken
"""Collector entry points that could not be loaded: name -> why (filled as the registry loads)."""


def register_collector(cls: type[Collector]) -> type[Collector]:
    """Make `cls` available as a collector named `cls.name` in this process; returns `cls`."""
    return COLLECTORS.register(cls.name, cls)


def load_collectors() -> dict[str, type[Collector]]:
    """Every collector: the `nnr_profile.collectors` entry points plus those registered here.

    A plugin that fails to load is left out and kept in :data:`BROKEN`, so the others work.
    """
    found = dict(COLLECTORS.items())
    if "timing" not in found:
        raise NnrError(
            f"no 'timing' collector in the {ENTRY_POINT_GROUP!r} entry points: the nnr-profile "
            "package is not installed or its metadata is stale; run 'pip install -e .'"
        )
    return found


def collector_descriptions() -> dict[str, str]:
    """Name -> one-line description of every loadable collector, `timing` first."""
    found = load_collectors()
    names = ["timing", *sorted(n for n in found if n != "timing")]
    return {name: found[name].description for name in names}


def get_collector(name: str) -> Collector:
    """A fresh collector instance by name (a UsageError naming the choices when unknown)."""
    return COLLECTORS.get(name)()


def parse_collectors(text: str) -> list[str]:
    """Collector names from a comma-separated list, `timing` first and always present."""
    names = ["timing"]
    for name in (n.strip() for n in text.split(",")):
        if name and name not in names:
            get_collector(name)
            names.append(name)
    return names
