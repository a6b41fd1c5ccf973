"""The launcher interface: where a sweep's trials run (here, or on a cluster).

A launcher is a config dataclass (its options, checked in `__post_init__`; see `config`) and a
class whose `launch(spec, db)` runs the sweep's pending cells and returns what they did.
`make_launcher` builds one by name from the options the user gave and refuses an option the
chosen launcher does not take. A new built-in launcher is a module in this folder with a
`Launcher` subclass decorated with `@register_launcher`, named in `LAUNCHER_MODULES`
(`__init__.py`), and its config dataclass in `config.py` (`CONFIGS`), whose `option` fields
become command-line options; a plugin's is an entry point of the group `nnr_profile.launchers`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.profiler.runner.launchers import LAUNCHERS
from nnr_profile.profiler.runner.sweep import DeviceChoice, SweepOutcome, SweepSpec, resolve_devices

Progress = Callable[[TrialSpec, TrialResult | None], None]
"""`on_progress(cell, result)` after each cell; `result` is None for a cell already done."""


class Launcher(ABC):
    """Runs a sweep's pending cells somewhere; built from its `config_class` instance."""

    name: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        self.config = config

    def devices(self) -> DeviceChoice:
        """The sweep's device axis (default: this machine's devices named by `gpu`)."""
        return resolve_devices(self.config.gpu)

    def notes(self, spec: SweepSpec) -> list[str]:
        """Lines worth printing before `spec` runs through this launcher (default: none)."""
        return []

    @abstractmethod
    def launch(
        self,
        spec: SweepSpec,
        db: str | Path,
        force: bool = False,
        on_progress: Progress | None = None,
    ) -> SweepOutcome:
        """Run every cell of `spec` not yet done in `db` (all with `force`); store the results."""


def register_launcher(cls: type[Launcher]) -> type[Launcher]:
    """Class decorator: make `cls` available as `--launcher <cls.name>`."""
    return LAUNCHERS.register(cls.name, cls)


def load_launchers() -> dict[str, type[Launcher]]:
    """Every launcher (built-ins and plugins), imported, by name."""
    return dict(LAUNCHERS.items())


def make_launcher(name: str, **options: Any) -> Launcher:
    """The launcher `name` configured with `options` (None: not given), every option checked."""
    if name not in LAUNCHERS:
        raise ParameterError(
            "launcher", "{name!r} is unknown: use {names}", name=name, names=", ".join(LAUNCHERS)
        )
    cls = LAUNCHERS.get(name)
    given = {key: value for key, value in options.items() if value is not None}
    accepted = {f.name for f in fields(cls.config_class)}
    for key in given:
        if key not in accepted:
            takers = [
                n
                for n, c in load_launchers().items()
                if key in {f.name for f in fields(c.config_class)}
            ]
            raise ParameterError(
                key,
                "only applies to {launcher} {takers}, not {name}",
                takers=" or ".join(takers),
                name=name,
            )
    return cls(cls.config_class(**given))
