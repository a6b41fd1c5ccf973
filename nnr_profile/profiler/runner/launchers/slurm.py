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

import math
import re
import shlex
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import NnrError, ParameterError
from nnr_profile.core.params import COUNT, require
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.launchers.base import register_launcher
from nnr_profile.profiler.runner.launchers.cluster import (
    ClusterConfig,
    ClusterLauncher,
    Submission,
    Task,
    task_minutes,
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
_TIME = re.compile(r"(?:(\d+)-)?(\d+(?::\d+){0,2})")
_MEM = re.compile(r"\d+[KMGT]?", re.IGNORECASE)


def slurm_minutes(text: str) -> int:
    """Whole minutes in a Slurm time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S); ParameterError if bad."""
    match = _TIME.fullmatch(text.strip())
    if match:
        parts = [int(p) for p in match[2].split(":")]
        if match[1] is not None:  # D-H, D-H:M, D-H:M:S
            total_s = int(match[1]) * 86400 + sum(
                p * s for p, s in zip(parts, (3600, 60, 1), strict=False)
            )
        else:  # M, M:S, H:M:S
            scale = {1: (60,), 2: (60, 1), 3: (3600, 60, 1)}[len(parts)]
            total_s = sum(p * s for p, s in zip(parts, scale, strict=True))
        if total_s > 0:
            return math.ceil(total_s / 60)
    raise ParameterError(
        "time_limit",
        "{value!r} is not a Slurm time: use minutes (90), H:M:S (1:30:00) or D-H:M (2-00:00)",
        value=text,
    )


def task_python_command(text: str) -> str:
    """The --task-python words, each quoted for the sbatch script (no shell syntax runs)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ParameterError(
            "task_python", "{value!r} cannot be split into words: {reason}", value=text, reason=exc
        ) from exc
    if not words:
        raise ParameterError("task_python", "is empty: give the command that starts Python")
    return shlex.join(words)


@dataclass(frozen=True)
class SlurmConfig(ClusterConfig):
    """Options of the Slurm launcher, checked together before anything is planned."""

    partition: str | None = None
    constraint: str | None = None
    gpus_per_node: int | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None
    mem: str | None = None
    task_python: str | None = None

    def __post_init__(self) -> None:
        if not self.partition:
            raise ParameterError(
                "launcher", "slurm needs {partition} (see 'sinfo -s' for the partitions)"
            )
        for name in ("partition", "constraint", "account", "qos"):
            value = getattr(self, name)
            if value is not None and (
                not value.strip() or any(c.isspace() or not c.isprintable() for c in value)
            ):
                raise ParameterError(
                    name, "{value!r} is not a Slurm name (no spaces or control characters)",
                    value=value,
                )  # fmt: skip
        require("gpus_per_node", self.gpus_per_node, COUNT, optional=True)
        if self.on_cpu and self.gpus_per_node is not None:
            raise ParameterError(
                "gpus_per_node", "reserves GPUs but {gpu} cpu runs on the CPU: drop one"
            )
        if self.gpu.strip().lower() not in ("all", "cpu"):
            raise ParameterError(
                "gpu",
                "{value} names GPUs of this machine; with {launcher} slurm each task runs on the "
                "GPU Slurm gives it: use {gpu} all (the default) or {gpu} cpu",
                value=self.gpu,
            )
        if self.time_limit is not None:
            slurm_minutes(self.time_limit)
        if self.mem is not None and not _MEM.fullmatch(self.mem.strip()):
            raise ParameterError(
                "mem", "{value!r} is not a Slurm memory size: use e.g. 16G or 500M", value=self.mem
            )
        if self.task_python is not None:
            task_python_command(self.task_python)

    @property
    def on_cpu(self) -> bool:
        """True when the trials run on the CPU (--gpu cpu)."""
        return self.gpu.strip().lower() == "cpu"


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
