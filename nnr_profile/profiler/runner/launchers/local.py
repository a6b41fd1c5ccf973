"""`--launcher local`: every trial on this machine, one worker (and trial process) per device."""

from __future__ import annotations

from pathlib import Path

from nnr_profile.profiler.runner.launchers.base import Launcher, Progress, register_launcher
from nnr_profile.profiler.runner.launchers.config import LocalConfig
from nnr_profile.profiler.runner.sweep import SweepOutcome, SweepSpec, run_sweep


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
