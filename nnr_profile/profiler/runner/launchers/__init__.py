"""Launchers: where a sweep's trials run. `local` (this machine), `slurm` (a job array) and
`submitit-local` (the cluster path on this machine); `base` has the interface, `config` their
options.

`LAUNCHERS` is the registry (a `core.registry.Registry`): the built-ins are named by their
module (`LAUNCHER_MODULES`), imported only when that launcher is used, and a plugin package adds
one through the entry-point group `nnr_profile.launchers` (``name = "pkg.module:Launcher"``),
so the command line lists the names without importing any launcher.
"""

from __future__ import annotations

from typing import Any

from nnr_profile.core.registry import Registry

ENTRY_POINT_GROUP = "nnr_profile.launchers"
"""Entry-point group of plugin launcher classes (`Launcher` subclasses named like the entry)."""

LAUNCHER_MODULES = {
    "local": "nnr_profile.profiler.runner.launchers.local",
    "slurm": "nnr_profile.profiler.runner.launchers.slurm",
    "submitit-local": "nnr_profile.profiler.runner.launchers.submitit_local",
}
"""Each built-in launcher's module, which registers it (`@register_launcher`) when imported."""


def launcher_problem(name: str, entry: Any) -> str | None:
    """Why an entry point's object is not the launcher `name` (None: it is)."""
    from nnr_profile.profiler.runner.launchers.base import Launcher

    is_launcher = isinstance(entry, type) and issubclass(entry, Launcher)
    if is_launcher and getattr(entry, "name", None) == name:
        return None
    return f"is not a Launcher subclass named {name!r}"


LAUNCHERS: Registry[Any] = Registry("launcher", group=ENTRY_POINT_GROUP, check=launcher_problem)
"""Launcher classes by name: the built-ins lazily by module, plugins from the entry points."""
for _name, _module in LAUNCHER_MODULES.items():
    LAUNCHERS.lazy(_name, _module)
