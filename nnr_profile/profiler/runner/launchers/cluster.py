"""What the submitit launchers (`slurm`, `submitit-local`) share: submit, wait, read shards.

Each pending cell becomes one task (one Slurm array task, or one local process). A task runs
its cell with `spawn_trial` and records it as a shard, `<results-dir>/shards/<cell_key>.db`
(see `store.shards`); the submitting process polls the tasks' states, reads each finished
task's shard and merges the shard folder into --db, or returns at once (`--no-wait`).

Results come back through the shards only: submitit's `*_result.pkl` files are never
unpickled here. A task that ends without a new shard (cancelled, killed, out of memory) is
recorded as a failed trial naming its log, unless its cell already has a successful shard.
The task side still unpickles its own `*_submitted.pkl`, so the results folder and its
`submitit/` folder must not be writable by other users (checked before submitting).

Resume: cells with a successful trial in --db or in a shard are skipped (unless `force`).
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import NnrError, ParameterError
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, TrialResult, TrialSpec
from nnr_profile.profiler.runner.launchers.base import Launcher, Progress
from nnr_profile.profiler.runner.launchers.config import ClusterConfig
from nnr_profile.profiler.runner.launchers.tasks import CellTask, run_cell_task
from nnr_profile.profiler.runner.sweep import SweepOutcome, SweepSpec, plan_sweep

POLL_MIN_S = 1.0
POLL_MAX_S = 15.0
"""Polls start every second and slow down to every 15 s as a sweep runs longer."""

Stamp = tuple[int, int]


@dataclass(frozen=True)
class Task:
    """A submitted task: its job id, its cell, its log and the cell's shard before it ran."""

    job_id: str
    cell: TrialSpec
    log: Path
    stamp: Stamp | None = None


@dataclass
class Submission:
    """A submitted sweep: new tasks, tasks of an earlier run still running, cells skipped."""

    shard_dir: Path
    tasks: list[Task] = field(default_factory=list)
    adopted: list[Task] = field(default_factory=list)
    skipped: list[TrialSpec] = field(default_factory=list)
    where: str = ""
    where_adopted: str = ""
    handles: dict[str, Any] = field(default_factory=dict)

    @property
    def job_ids(self) -> list[str]:
        """Distinct job ids (an array id on Slurm, one process id per task locally)."""
        ids = [task.job_id.split("_")[0] for task in self.adopted + self.tasks]
        return list(dict.fromkeys(ids))

    def summary(self) -> str:
        """One line: what was submitted where, what was already done, what is awaited."""
        done = len(self.skipped)
        if not self.tasks and not self.adopted:
            return f"nothing to submit: all {done} cell(s) already done"
        head = (
            f"submitted {len(self.tasks)} trial(s) to {self.where} ({done} already done)"
            if self.tasks
            else f"nothing new to submit ({done} already done)"
        )
        if self.adopted:
            head += (
                f"; waiting for {len(self.adopted)} trial(s) still running in "
                f"{self.where_adopted} from an earlier run"
            )
        return f"{head}; shards go to {self.shard_dir}"

    def next_steps(self, db: str | Path) -> str:
        """What to run once the tasks of a `--no-wait` submission have finished."""
        ids = ", ".join(self.job_ids) or "none"
        return (
            f"job id(s): {ids}. When they have finished: nnr-profile merge {self.shard_dir} "
            f"--db {db} && nnr-profile report --db {db} (or report --db {self.shard_dir}); "
            "or run the same command again: it waits for them and merges"
        )


class ClusterLauncher(Launcher):
    """A launcher that submits one submitit task per pending cell and reads their shards."""

    config: ClusterConfig
    pin_allocated_gpu = False
    """True where each task finds its GPU from CUDA_VISIBLE_DEVICES (see `tasks`)."""
    lock_devices = False
    """True where tasks share this machine's devices and must take turns."""
    shard_grace_s = 60.0
    """How long a task that ended normally may take to show its shard (shared-folder caches)."""
    tasks_outlive_waiting = False
    """True where tasks keep running when the waiting process stops (a cluster's queue)."""

    @property
    def waits(self) -> bool:
        """False with --no-wait: submit, and leave waiting and merging to a later run."""
        return not self.config.no_wait

    def cells(self, spec: SweepSpec) -> list[TrialSpec]:
        """The sweep's cells in run order (all devices)."""
        return [cell for device_cells in plan_sweep(spec).values() for cell in device_cells]

    @abstractmethod
    def executor(self, folder: Path, spec: SweepSpec, cells: list[TrialSpec]) -> Any:
        """The submitit executor, its parameters set, for `cells` of `spec`."""

    @abstractmethod
    def where(self, job_ids: list[str]) -> str:
        """Where tasks with these job ids run, in words (e.g. 'Slurm job array 42')."""

    @abstractmethod
    def finished(self, submission: Submission, job_ids: list[str]) -> dict[str, str]:
        """The end state of each of `job_ids` that has finished (others: not listed)."""

    def live_tasks(self, folder: Path, cells: list[TrialSpec]) -> list[Task]:
        """Tasks of an earlier submission still queued or running for `cells` (none here)."""
        return []

    def submitted(self, folder: Path, submission: Submission) -> None:
        """Note the new tasks of `submission` where a later run can find them (nothing here)."""

    def launch(
        self,
        spec: SweepSpec,
        db: str | Path,
        force: bool = False,
        on_progress: Progress | None = None,
    ) -> SweepOutcome:
        """Submit the pending cells, wait for every task, merge the shards into `db`."""
        return self.finish(self.submit(spec, db, force=force), db, on_progress)

    def submit(self, spec: SweepSpec, db: str | Path, force: bool = False) -> Submission:
        """Submit one task per pending cell; cells of live earlier tasks are awaited instead."""
        from nnr_profile.store.shards import done_cells, shard_path

        folder = self.config.folder(db)
        shard_dir = folder / "shards"
        private_folder(folder / "submitit", folder)
        cells = self.cells(spec)
        done = set() if force else done_cells(db, shard_dir)
        pending = [cell for cell in cells if cell.cell_key not in done]
        submission = Submission(shard_dir, skipped=[c for c in cells if c.cell_key in done])
        submission.adopted = self.live_tasks(folder, pending)
        live = {task.cell.cell_key for task in submission.adopted}
        todo = [cell for cell in pending if cell.cell_key not in live]
        if todo:
            stamps = {c.cell_key: shard_stamp(shard_path(shard_dir, c.cell_key)) for c in todo}
            executor = self.executor(folder, spec, todo)
            work = [
                CellTask(
                    cell=cell,
                    shard_dir=str(shard_dir),
                    timeout_s=spec.timeout_s,
                    pin_allocated_gpu=self.pin_allocated_gpu,
                    lock_dir=str(folder / "locks") if self.lock_devices else None,
                    artifact_dir=str(folder / "traces"),
                )
                for cell in todo
            ]
            try:
                jobs = executor.map_array(run_cell_task, work)
            except (RuntimeError, OSError) as exc:
                lines = [line for line in str(exc).splitlines() if line.strip()]
                reason = lines[-1].strip() if lines else type(exc).__name__
                raise NnrError(f"submitting the sweep failed: {reason}") from exc
            for job, cell in zip(jobs, todo, strict=True):
                task = Task(str(job.job_id), cell, job.paths.stderr, stamps[cell.cell_key])
                submission.tasks.append(task)
                submission.handles[task.job_id] = job
            self.submitted(folder, submission)
        submission.where = self.where([t.job_id for t in submission.tasks])
        submission.where_adopted = self.where([t.job_id for t in submission.adopted])
        return submission

    def wait(self, submission: Submission, on_progress: Progress | None = None) -> SweepOutcome:
        """Wait for every task; `on_progress(cell, result)` as in `run_sweep` (None: skipped)."""
        outcome = SweepOutcome(skipped=len(submission.skipped))
        for cell in submission.skipped:
            if on_progress:
                on_progress(cell, None)
        pending = {task.job_id: task for task in submission.adopted + submission.tasks}
        began = time.monotonic()
        ended_without_shard: dict[str, float] = {}
        try:
            while pending:
                _refresh(submission.shard_dir)
                for job_id, state in self.finished(submission, list(pending)).items():
                    task = pending[job_id]
                    result = _shard_result(task, submission.shard_dir)
                    if result is None:
                        first = ended_without_shard.setdefault(job_id, time.monotonic())
                        waited = time.monotonic() - first
                        if _may_still_show(state) and waited < self.shard_grace_s:
                            continue
                        result = _lost(task, state, submission.shard_dir)
                    del pending[job_id]
                    outcome.add(result)
                    if on_progress:
                        on_progress(task.cell, result)
                if pending:
                    time.sleep(poll_delay(time.monotonic() - began))
        except KeyboardInterrupt:
            if not self.tasks_outlive_waiting:
                raise
            raise NnrError(
                f"stopped waiting; the tasks ({self.where(list(pending))}) keep running: run the "
                "same command again to wait for them and merge their results"
            ) from None
        return outcome

    def finish(
        self, submission: Submission, db: str | Path, on_progress: Progress | None = None
    ) -> SweepOutcome:
        """Wait for the tasks, then merge every shard of the shard folder into the store `db`."""
        from nnr_profile.store.merge import merge_stores

        outcome = self.wait(submission, on_progress)
        if any(submission.shard_dir.glob("*.db")):
            merge_stores([submission.shard_dir], db)
        return outcome


def poll_delay(elapsed_s: float) -> float:
    """Seconds to the next poll: 1 s at first, a tenth of the time waited, at most 15 s."""
    return min(POLL_MAX_S, max(POLL_MIN_S, elapsed_s / 10))


def private_folder(folder: Path, parent: Path) -> None:
    """Create `folder` (mode 700) in `parent`; refuse either when other users may write it.

    Tasks unpickle their work from `folder`: whoever can write there (or rename it away in
    `parent`) could run code as you. A world-writable `parent` with the sticky bit (/tmp) is
    safe, as others cannot rename what you own there.
    """
    parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    for path, sticky_ok in ((parent, True), (folder, False)):
        info = path.stat()
        mode = info.st_mode
        open_to_others = mode & (stat.S_IWGRP | stat.S_IWOTH)
        if sticky_ok and mode & stat.S_ISVTX:
            open_to_others = 0
        if open_to_others or info.st_uid != os.getuid():
            raise ParameterError(
                "results_dir",
                "{path} is writable by other users (or not yours): tasks load their work "
                "from it, so another user could run code as you; 'chmod go-w {path}' or "
                "choose a folder of your own",
                path=str(path),
            )


def shard_stamp(path: Path) -> Stamp | None:
    """(inode, mtime in ns) of the shard file, None when there is none: tells a new shard."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns)


def _refresh(folder: Path) -> None:
    """Make a shared (NFS) folder's listing fresh: touching its attributes revalidates them."""
    with contextlib.suppress(OSError):
        folder.chmod(folder.stat().st_mode)


def _may_still_show(state: str) -> bool:
    """True when a task ended normally, so its shard may still be on its way."""
    return state.upper() in ("COMPLETED", "FINISHED")


def _read_shard(path: Path, cell_key: str) -> tuple[str, str | None] | None:
    """(status, error) of the cell's trial in the shard at `path`; None if it cannot be read."""
    from nnr_profile.store.database import Store

    try:
        with Store(path, create=False) as store:
            return store.cell_statuses().get(cell_key)
    except NnrError:
        return None


def _shard_result(task: Task, shard_dir: Path) -> TrialResult | None:
    """The result in the task's shard if the task wrote one (a shard newer than its stamp)."""
    from nnr_profile.store.shards import shard_path

    path = shard_path(shard_dir, task.cell.cell_key)
    stamp = shard_stamp(path)
    found = None if stamp is None or stamp == task.stamp else _read_shard(path, task.cell.cell_key)
    if found is None:
        return None
    return TrialResult(spec=task.cell, status=found[0], error=found[1])


def _lost(task: Task, state: str, shard_dir: Path) -> TrialResult:
    """A failed result for a task that left no shard; stored unless the cell has a good one."""
    from nnr_profile.store.shards import shard_path, write_shard

    reason = f"task {task.job_id} ended without a result ({state}); log: {task.log}"
    result = TrialResult(spec=task.cell, status=STATUS_FAILED, error=reason)
    old = _read_shard(shard_path(shard_dir, task.cell.cell_key), task.cell.cell_key)
    if old is None or old[0] != STATUS_OK:
        write_shard(result, shard_dir)
    return result


def task_minutes(timeout_s: float | None, margin_min: int) -> int | None:
    """Minutes a task may run: the trial timeout rounded up plus `margin_min` (None: no limit)."""
    return None if timeout_s is None else math.ceil(timeout_s / 60) + margin_min
