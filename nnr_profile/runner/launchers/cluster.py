"""Cluster fan-out: a sweep submitted through submitit, one task per pending trial cell.

`--launcher slurm` submits one Slurm job array whose tasks each own one GPU;
`--launcher submitit-local` runs the same tasks through submitit's local executor on this
machine (for tests and for trying the path without Slurm; tasks on one device take turns). Every
task runs its cell with `spawn_trial` (its own process, the trial timeout) and records it as a
shard, `<results-dir>/shards/<cell_key>.db` (see `reports.shards`); the submitting process waits
and merges the shards into --db, or returns at once with the job ids (`--no-wait`).

GPU pinning on Slurm: cells are planned on "the task's GPU" (`gpu_index` 0, `host`
`slurm:<partition>[/<constraint>]`, so sweeps on different partitions are different cells).
On the node the task finds the GPU Slurm gave it from CUDA_VISIBLE_DEVICES (a UUID, or an index
that is the NVML/PCI index when the node's other GPUs are visible, or the first GPU NVML sees
when Slurm confines the task to its own GPUs) and runs the trial on that NVML index. The shard
keeps the planned cell (so resume finds it); the trial's environment fingerprint records the
GPU that really ran it (index, UUID, name, architecture).

Resume: cells with a successful trial in --db or in a shard are skipped (unless `force`).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import NnrError, UsageError
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, TrialResult, TrialSpec
from nnr_profile.runner.sweep import (
    CPU,
    DeviceChoice,
    SweepOutcome,
    SweepSpec,
    plan_sweep,
    resolve_devices,
)

LAUNCHERS = ("local", "slurm", "submitit-local")
SLURM_MARGIN_MIN = 10
"""Minutes a Slurm task gets beyond the trial timeout (start-up, imports, writing the shard)."""
LOCAL_MAX_MIN = 7 * 24 * 60
POLL_S = {"slurm": 15.0, "submitit-local": 0.5}


@dataclass(frozen=True)
class LaunchConfig:
    """Where a sweep's trials run (`launcher`) and the cluster options, checked together."""

    launcher: str = "local"
    gpu: str = "all"
    partition: str | None = None
    constraint: str | None = None
    gpus_per_node: int | None = None
    results_dir: str | Path | None = None
    wait: bool = True
    task_python: str | None = None

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise UsageError(f"unknown --launcher {self.launcher!r}: use {', '.join(LAUNCHERS)}")
        slurm_only = {
            "--partition": self.partition,
            "--constraint": self.constraint,
            "--gpus-per-node": self.gpus_per_node,
            "--task-python": self.task_python,
        }
        given = [name for name, value in slurm_only.items() if value is not None]
        if self.launcher != "slurm" and given:
            raise UsageError(
                f"{', '.join(given)} only applies to --launcher slurm, not {self.launcher}"
            )
        if self.launcher == "local":
            flags = (("--results-dir", self.results_dir), ("--no-wait", not self.wait))
            extra = [name for name, value in flags if value]
            if extra:
                raise UsageError(
                    f"{', '.join(extra)} only applies to --launcher slurm or submitit-local"
                )
        if self.launcher != "slurm":
            return
        if not self.partition:
            raise UsageError(
                "--launcher slurm needs --partition (see 'sinfo -s' for the partitions)"
            )
        if self.gpus_per_node is not None and self.gpus_per_node < 1:
            raise UsageError(f"--gpus-per-node must be at least 1, not {self.gpus_per_node}")
        gpu = self.gpu.strip().lower()
        if gpu == "cpu" and self.gpus_per_node is not None:
            raise UsageError(
                "--gpus-per-node reserves GPUs but --gpu cpu runs on the CPU: drop one"
            )
        if gpu not in ("all", "cpu"):
            raise UsageError(
                f"--gpu {self.gpu} names GPUs of this machine; with --launcher slurm each task "
                "runs on the GPU Slurm gives it: use --gpu all (the default) or --gpu cpu"
            )

    @property
    def is_cluster(self) -> bool:
        """True when trials go through submitit (slurm or submitit-local)."""
        return self.launcher != "local"

    @property
    def on_cpu(self) -> bool:
        """True when the trials run on the CPU (--gpu cpu)."""
        return self.gpu.strip().lower() == "cpu"

    def devices(self) -> DeviceChoice:
        """The sweep's device axis: this machine's devices, or on Slurm the task's one GPU."""
        if self.launcher != "slurm":
            return resolve_devices(self.gpu)
        return DeviceChoice((CPU,) if self.on_cpu else (0,))

    def folder(self, db: str | Path) -> Path:
        """The shared results folder: --results-dir, or the folder of --db."""
        return Path(self.results_dir) if self.results_dir else Path(db).resolve().parent


@dataclass(frozen=True)
class CellTask:
    """What one array task runs: a cell, where its shard goes, and how to pick its device."""

    cell: TrialSpec
    shard_dir: str
    timeout_s: float | None
    pin_allocated_gpu: bool = False
    lock_dir: str | None = None
    artifact_dir: str | None = None


def run_cell_task(task: CellTask) -> dict[str, Any]:
    """Array-task entry point: run the cell in its own process, write its shard, return status."""
    from nnr_profile.runner.process import spawn_trial
    from nnr_profile.store.shards import write_shard

    cell = task.cell
    try:
        run_spec = cell
        if task.pin_allocated_gpu and cell.gpu_index is not None:
            run_spec = replace(cell, gpu_index=allocated_gpu())
        with _device_lock(task.lock_dir, cell.device_label):
            artifacts = Path(task.artifact_dir) if task.artifact_dir else None
            result = spawn_trial(run_spec, timeout_s=task.timeout_s, artifact_dir=artifacts)
    except NnrError as exc:
        result = TrialResult(spec=cell, status=STATUS_FAILED, error=str(exc))
    result.spec = cell
    write_shard(result, task.shard_dir)
    return {"status": result.status, "error": result.error}


def allocated_gpu(
    env: Mapping[str, str] | None = None, gpus: Sequence[dict[str, Any]] | None = None
) -> int:
    """NVML index of the first GPU Slurm gave this task (from CUDA_VISIBLE_DEVICES)."""
    from nnr_profile.collectors.nvml import list_gpus

    env = os.environ if env is None else env
    gpus = list_gpus() if gpus is None else list(gpus)
    text = env.get("CUDA_VISIBLE_DEVICES", "")
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not gpus:
        raise NnrError(
            f"this task sees no NVIDIA GPU (CUDA_VISIBLE_DEVICES={text!r}): pick a GPU "
            "--partition, or run on the CPU with --gpu cpu"
        )
    if not entries:
        return int(gpus[0]["index"])
    first = entries[0]
    if not first.isdigit():
        for gpu in gpus:
            if gpu.get("uuid") == first:
                return int(gpu["index"])
        raise NnrError(f"CUDA_VISIBLE_DEVICES={text!r} names no GPU that NVML sees on this node")
    if len(gpus) <= len(entries):
        return int(gpus[0]["index"])
    if int(first) not in {g["index"] for g in gpus}:
        raise NnrError(f"CUDA_VISIBLE_DEVICES={text!r} names no GPU that NVML sees on this node")
    return int(first)


@contextlib.contextmanager
def _device_lock(lock_dir: str | None, label: str) -> Iterator[None]:
    """Hold `<lock_dir>/<label>.lock` so tasks sharing one device on one machine take turns."""
    if lock_dir is None:
        yield
        return
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(lock_dir) / f"{label}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Submission:
    """A submitted sweep: the submitit jobs and their cells, the cells skipped, the shard folder."""

    launcher: str
    shard_dir: Path
    jobs: list[Any] = field(default_factory=list)
    cells: list[TrialSpec] = field(default_factory=list)
    skipped: list[TrialSpec] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str]:
        """Distinct job ids (the array id on Slurm, one process id per task locally)."""
        ids = [str(job.job_id).split("_")[0] for job in self.jobs]
        return list(dict.fromkeys(ids))

    def summary(self) -> str:
        """One line: what was submitted where, and what was already done."""
        if not self.jobs:
            return f"nothing to submit: all {len(self.skipped)} cell(s) already done"
        where = (
            f"Slurm job array {', '.join(self.job_ids)}"
            if self.launcher == "slurm"
            else "submitit's local executor"
        )
        return (
            f"submitted {len(self.jobs)} trial(s) to {where} ({len(self.skipped)} already done); "
            f"shards go to {self.shard_dir}"
        )

    def next_steps(self, db: str | Path) -> str:
        """What to run once the tasks of a `--no-wait` submission have finished."""
        ids = ", ".join(self.job_ids) or "none"
        return (
            f"job id(s): {ids}. When they have finished: nnr-profile merge {self.shard_dir} "
            f"--db {db} && nnr-profile report --db {db} (or report --db {self.shard_dir})"
        )


def submit_sweep(
    spec: SweepSpec, config: LaunchConfig, db: str | Path, force: bool = False
) -> Submission:
    """Submit one task per pending cell of `spec` (cells done in --db or in a shard are skipped)."""
    folder = config.folder(db)
    shard_dir = folder / "shards"
    cells = _cells(spec, config)
    done = set() if force else done_cells(db, shard_dir)
    submission = Submission(config.launcher, shard_dir)
    submission.skipped = [c for c in cells if c.cell_key in done]
    submission.cells = [c for c in cells if c.cell_key not in done]
    if not submission.cells:
        return submission
    per_device: dict[str, int] = {}
    for cell in submission.cells:
        per_device[cell.device_label] = per_device.get(cell.device_label, 0) + 1
    executor = make_executor(config, folder / "submitit", spec.timeout_s, max(per_device.values()))
    tasks = [
        CellTask(
            cell=cell,
            shard_dir=str(shard_dir),
            timeout_s=spec.timeout_s,
            pin_allocated_gpu=config.launcher == "slurm",
            lock_dir=None if config.launcher == "slurm" else str(folder / "locks"),
            artifact_dir=str(folder / "traces"),
        )
        for cell in submission.cells
    ]
    try:
        submission.jobs = executor.map_array(run_cell_task, tasks)
    except (RuntimeError, OSError) as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise NnrError(
            f"submitting the sweep failed: {lines[-1] if lines else type(exc).__name__}"
        ) from exc
    return submission


def wait_for_sweep(
    submission: Submission,
    on_progress: Callable[[TrialSpec, TrialResult | None], None] | None = None,
    poll_s: float | None = None,
) -> SweepOutcome:
    """Wait for every task; `on_progress(cell, result)` as in `run_sweep` (None: skipped)."""
    poll_s = POLL_S.get(submission.launcher, 1.0) if poll_s is None else poll_s
    outcome = SweepOutcome(skipped=len(submission.skipped))
    for cell in submission.skipped:
        if on_progress:
            on_progress(cell, None)
    pending = list(zip(submission.jobs, submission.cells, strict=True))
    while pending:
        waiting = []
        for job, cell in pending:
            if not job.done():
                waiting.append((job, cell))
                continue
            result = _task_result(job, cell)
            outcome.ran += 1
            if result.status != STATUS_OK:
                outcome.failed.append(result)
            if on_progress:
                on_progress(cell, result)
        pending = waiting
        if pending:
            time.sleep(poll_s)
    return outcome


def finish_sweep(
    submission: Submission,
    db: str | Path,
    on_progress: Callable[[TrialSpec, TrialResult | None], None] | None = None,
) -> SweepOutcome:
    """Wait for the tasks, then merge every shard of the shard folder into the store `db`."""
    from nnr_profile.store.merge import merge_stores

    outcome = wait_for_sweep(submission, on_progress)
    if any(submission.shard_dir.glob("*.db")):
        merge_stores([submission.shard_dir], db)
    return outcome


def done_cells(db: str | Path, shard_dir: str | Path) -> set[str]:
    """Cell keys with a successful trial in the store `db` (if it exists) or in a shard."""
    from nnr_profile.store.merge import read_only
    from nnr_profile.store.shards import shard_statuses

    done = {key for key, (status, _) in shard_statuses(shard_dir).items() if status == STATUS_OK}
    if Path(db).exists():
        conn = read_only(db)
        try:
            rows = conn.execute("SELECT cell_key FROM trials WHERE status = ?", (STATUS_OK,))
            done |= {row[0] for row in rows}
        except sqlite3.DatabaseError as exc:
            raise NnrError(f"{db} is not a readable nnr-profile store: {exc}") from exc
        finally:
            conn.close()
    return done


def make_executor(
    config: LaunchConfig, folder: Path, timeout_s: float | None, cells_per_device: int = 1
) -> Any:
    """The submitit executor for `config`: Slurm (AutoExecutor) or submitit's local executor."""
    import submitit

    if config.launcher == "slurm":
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:
            raise NnrError(
                f"--launcher slurm needs Slurm's {' and '.join(missing)} on PATH: submit from a "
                "cluster login node, or try the path here with --launcher submitit-local"
            )
        extra = {"slurm_python": config.task_python} if config.task_python else {}
        executor = submitit.AutoExecutor(folder=folder / "%A", cluster="slurm", **extra)
        params: dict[str, Any] = {
            "name": "nnr-profile",
            "nodes": 1,
            "tasks_per_node": 1,
            "slurm_partition": config.partition,
        }
        if timeout_s is not None:
            params["timeout_min"] = math.ceil(timeout_s / 60) + SLURM_MARGIN_MIN
        if config.constraint:
            params["slurm_constraint"] = config.constraint
        if not config.on_cpu:
            params["gpus_per_node"] = config.gpus_per_node or 1
    else:
        executor = submitit.AutoExecutor(folder=folder, cluster="local")
        minutes = (
            LOCAL_MAX_MIN
            if timeout_s is None
            else min(LOCAL_MAX_MIN, math.ceil(cells_per_device * (timeout_s + 60) / 60))
        )
        params = {"name": "nnr-profile", "timeout_min": minutes}
    executor.update_parameters(**params)
    return executor


def _cells(spec: SweepSpec, config: LaunchConfig) -> list[TrialSpec]:
    cells = [cell for device_cells in plan_sweep(spec).values() for cell in device_cells]
    if config.launcher != "slurm":
        return cells
    host = f"slurm:{config.partition}" + (f"/{config.constraint}" if config.constraint else "")
    return [replace(cell, host=host) for cell in cells]


def _task_result(job: Any, cell: TrialSpec) -> TrialResult:
    try:
        answer = job.result()
    except Exception as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else type(exc).__name__
        return TrialResult(
            spec=cell,
            status=STATUS_FAILED,
            error=f"task {job.job_id} ended without a result ({reason}); log: {job.paths.stderr}",
        )
    return TrialResult(spec=cell, status=answer["status"], error=answer.get("error"))
