"""`--launcher local`: every trial on this machine, one worker (and trial process) per device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnr_profile.profiler.runner.launchers.base import Launcher, Progress, register_launcher
from nnr_profile.profiler.runner.sweep import SweepOutcome, SweepSpec, run_sweep


@dataclass(frozen=True)
class LocalConfig:
    """Options of the local launcher: the devices of this machine (`gpu`: all, cpu, 0,2)."""

    gpu: str = "all"


@register_launcher
class LocalLauncher(Launcher):
    """Runs the sweep here and records each trial into the store as it ends."""

    name = "local"
    config_class = LocalConfig

    def launch(
        self,
        spec: SweepSpec,
        db: str | Path,
        force: bool = False,
        on_progress: Progress | None = None,
    ) -> SweepOutcome:
        """Run every pending cell of `spec` here (see `run_sweep`)."""
        return run_sweep(spec, db, force=force, on_progress=on_progress)
