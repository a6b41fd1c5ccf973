"""`--launcher local`: every trial on this machine, one worker (and trial process) per device."""

from __future__ import annotations

from pathlib import Path

from nnr_profile.profiler.runner.launchers.base import Launcher, Progress, register_launcher
from nnr_profile.profiler.runner.launchers.config import LocalConfig
from nnr_profile.profiler.runner.sweep import SweepOutcome, SweepSpec, run_sweep, start_notes


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
        """Run every pending cell of `spec` here (see `run_sweep`), trials started as
        `--trial-start` says."""
        start = self.config.trial_start
        return run_sweep(spec, db, force=force, on_progress=on_progress, start=start)

    def notes(self, spec: SweepSpec) -> list[str]:
        """How the sweep's trials will start, per framework (`profiler.runner.warm`)."""
        return start_notes(spec, self.config.trial_start)
