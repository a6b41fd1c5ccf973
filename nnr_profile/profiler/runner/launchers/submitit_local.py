"""`--launcher submitit-local`: the cluster path on this machine, through submitit's local
executor (for trying it without Slurm, and for tests). Each pending cell is one local process;
tasks on one device take turns (a lock file per device in `<results-dir>/locks`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.launchers.base import register_launcher
from nnr_profile.profiler.runner.launchers.cluster import ClusterLauncher, Submission
from nnr_profile.profiler.runner.launchers.config import SubmititLocalConfig
from nnr_profile.profiler.runner.sweep import SweepSpec

LOCAL_MAX_MIN = 7 * 24 * 60


@register_launcher
class SubmititLocalLauncher(ClusterLauncher):
    """Runs each pending cell as a submitit local job; reads the shards."""

    name = "submitit-local"
    config_class = SubmititLocalConfig
    lock_devices = True
    shard_grace_s = 0.0

    def executor(self, folder: Path, spec: SweepSpec, cells: list[TrialSpec]) -> Any:
        """submitit's local executor; its time limit covers a device's cells taking turns."""
        import submitit

        per_device: dict[str, int] = {}
        for cell in cells:
            per_device[cell.device_label] = per_device.get(cell.device_label, 0) + 1
        minutes = (
            LOCAL_MAX_MIN
            if spec.timeout_s is None
            else min(
                LOCAL_MAX_MIN, math.ceil(max(per_device.values()) * (spec.timeout_s + 60) / 60)
            )
        )
        executor = submitit.AutoExecutor(folder=folder / "submitit", cluster="local")
        executor.update_parameters(name="nnr-profile", timeout_min=minutes)
        return executor

    def where(self, job_ids: list[str]) -> str:
        """Always 'submitit's local executor'."""
        return "submitit's local executor"

    def finished(self, submission: Submission, job_ids: list[str]) -> dict[str, str]:
        """End states of the local processes that have ended."""
        jobs = [submission.handles[job_id] for job_id in job_ids]
        return {str(job.job_id): job.state for job in jobs if job.done()}
