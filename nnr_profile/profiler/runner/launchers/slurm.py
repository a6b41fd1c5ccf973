"""`--launcher slurm`: one Slurm job array per sweep, one task (and GPU) per pending cell.

Cells are planned on "the task's GPU" (`gpu_index` 0) with `host`
`slurm:<partition>[/<constraint>]`, so sweeps on different partitions are different cells;
nothing asks this machine (a login node) for GPUs. `--account`, `--qos`, `--time` and
`--mem` go to `sbatch` as they are (checked first); `--time` defaults to the trial timeout
plus 10 minutes.

States come from `squeue`, never `sacct` (often off on small clusters, and submitit's sacct
polls warn at every poll there). A run that is killed while it waits leaves its tasks running;
the same command run again finds them through the array's `cells.json` and `squeue`, waits for
them and merges their shards instead of submitting those cells again.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import NnrError, ParameterError
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.launchers.base import register_launcher
from nnr_profile.profiler.runner.launchers.cluster import (
    ClusterLauncher,
    Submission,
    Task,
    task_minutes,
)
from nnr_profile.profiler.runner.launchers.config import (
    SlurmConfig,
    slurm_minutes,
    task_python_command,
)
from nnr_profile.profiler.runner.launchers.slurm_queue import (
    GONE,
    LIVE_STATES,
    queue_states,
    read_manifests,
    write_manifest,
)
from nnr_profile.profiler.runner.sweep import CPU, DeviceChoice, SweepSpec

SLURM_MARGIN_MIN = 10
"""Minutes a Slurm task gets beyond the trial timeout (start-up, imports, writing the shard)."""
SQUEUE_PATIENCE_S = 600.0
"""How long waiting rides out failing squeue calls (a controller restarting) before stopping."""


@register_launcher
class SlurmLauncher(ClusterLauncher):
    """Submits pending cells as one Slurm job array; polls squeue; reads the shards."""

    name = "slurm"
    config_class = SlurmConfig
    config: SlurmConfig
    pin_allocated_gpu = True
    tasks_outlive_waiting = True
    _squeue_failing_since: float | None = None

    def devices(self) -> DeviceChoice:
        """The task's one GPU (or the CPU): this machine's GPUs are never looked at."""
        return DeviceChoice((CPU,) if self.config.on_cpu else (0,))

    def cells(self, spec: SweepSpec) -> list[TrialSpec]:
        """The sweep's cells, their host the partition (and constraint) they run on."""
        config = self.config
        host = f"slurm:{config.partition}" + (f"/{config.constraint}" if config.constraint else "")
        return [replace(cell, host=host) for cell in super().cells(spec)]

    def executor(self, folder: Path, spec: SweepSpec, cells: list[TrialSpec]) -> Any:
        """submitit's Slurm executor with the sweep's resources."""
        missing = [tool for tool in ("sbatch", "srun", "squeue") if shutil.which(tool) is None]
        if missing:
            raise NnrError(
                f"--launcher slurm needs Slurm's {' and '.join(missing)} on PATH: submit from a "
                "cluster login node, or try the path here with --launcher submitit-local"
            )
        import submitit

        config = self.config
        minutes = task_minutes(spec.timeout_s, SLURM_MARGIN_MIN)
        if config.time_limit is not None:
            minutes = slurm_minutes(config.time_limit)
            if spec.timeout_s is not None and minutes * 60 < spec.timeout_s:
                raise ParameterError(
                    "time_limit",
                    "{value} gives each task {minutes} min, less than the trial {timeout_s} of "
                    "{seconds:g} s: Slurm would end tasks first; raise it or lower {timeout_s}",
                    value=config.time_limit,
                    minutes=minutes,
                    seconds=spec.timeout_s,
                )
        extra = (
            {"slurm_python": task_python_command(config.task_python)} if config.task_python else {}
        )
        executor = submitit.AutoExecutor(
            folder=folder / "submitit" / "%A", cluster="slurm", **extra
        )
        params: dict[str, Any] = {
            "name": "nnr-profile",
            "nodes": 1,
            "tasks_per_node": 1,
            "slurm_partition": config.partition,
        }
        if minutes is not None:
            params["timeout_min"] = minutes
        for key in ("constraint", "account", "qos"):
            if getattr(config, key):
                params[f"slurm_{key}"] = getattr(config, key)
        if config.mem:
            params["slurm_additional_parameters"] = {"mem": config.mem.strip().upper()}
        if not config.on_cpu:
            params["gpus_per_node"] = config.gpus_per_node or 1
        executor.update_parameters(**params)
        return executor

    def where(self, job_ids: list[str]) -> str:
        """'Slurm job array 42' (or arrays 42, 43)."""
        arrays = list(dict.fromkeys(job_id.split("_")[0] for job_id in job_ids))
        return f"Slurm job array{'s' if len(arrays) > 1 else ''} {', '.join(arrays)}"

    def finished(self, submission: Submission, job_ids: list[str]) -> dict[str, str]:
        """End states from squeue; a task squeue no longer lists has ended."""
        try:
            states = queue_states(job_ids)
        except NnrError:
            now = time.monotonic()
            self._squeue_failing_since = self._squeue_failing_since or now
            if now - self._squeue_failing_since > SQUEUE_PATIENCE_S:
                raise
            return {}
        self._squeue_failing_since = None
        ended = {job_id: states.get(job_id, GONE) for job_id in job_ids}
        return {job_id: state for job_id, state in ended.items() if state not in LIVE_STATES}

    def submitted(self, folder: Path, submission: Submission) -> None:
        """Write each new array's cells.json so a later run can find its live tasks."""
        per_array: dict[str, list[dict[str, Any]]] = {}
        for task in submission.tasks:
            per_array.setdefault(task.job_id.split("_")[0], []).append(
                {
                    "job_id": task.job_id,
                    "cell_key": task.cell.cell_key,
                    "log": str(task.log),
                    "stamp": list(task.stamp) if task.stamp else None,
                }
            )
        for array_id, tasks in per_array.items():
            write_manifest(folder / "submitit", array_id, tasks)

    def live_tasks(self, folder: Path, cells: list[TrialSpec]) -> list[Task]:
        """Tasks of earlier arrays still queued or running for `cells`; ended arrays forgotten."""
        manifests = read_manifests(folder / "submitit")
        if not manifests:
            return []
        states = queue_states([t["job_id"] for _, tasks in manifests for t in tasks])
        by_key = {cell.cell_key: cell for cell in cells}
        live = []
        for path, tasks in manifests:
            running = [t for t in tasks if states.get(t["job_id"], GONE) in LIVE_STATES]
            if not running:
                path.unlink(missing_ok=True)
            for entry in running:
                if entry["cell_key"] in by_key:
                    stamp = tuple(entry["stamp"]) if entry.get("stamp") else None
                    live.append(
                        Task(entry["job_id"], by_key[entry["cell_key"]], Path(entry["log"]), stamp)
                    )
        return live
