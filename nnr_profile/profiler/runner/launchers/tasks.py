"""What a cluster task runs on its node: one cell in its own process, recorded as a shard.

GPU pinning on Slurm: cells are planned on "the task's GPU" (`gpu_index` 0). On the node the
task finds the GPU Slurm gave it from CUDA_VISIBLE_DEVICES (a UUID, or an index that is the
NVML/PCI index when the node's other GPUs are visible, or the first GPU NVML sees when Slurm
confines the task to its own GPUs) and runs the trial on that NVML index. The shard keeps the
planned cell (so resume finds it); the trial's environment fingerprint records the GPU that
really ran it (index, UUID, name, architecture).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import NnrError
from nnr_profile.core.specs import STATUS_FAILED, TrialResult, TrialSpec


@dataclass(frozen=True)
class CellTask:
    """What one array task runs: a cell, where its shard goes, and how to pick its device."""

    cell: TrialSpec
    shard_dir: str
    timeout_s: float | None
    pin_allocated_gpu: bool = False
    lock_dir: str | None = None
    artifact_dir: str | None = None


def run_cell_task(task: CellTask) -> str:
    """Array-task entry point: run the cell in its own process, write its shard; its status.

    The submitting process reads the shard, never this return value (submitit would pickle it).
    """
    from nnr_profile.profiler.runner.process import spawn_trial
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
    return result.status


def allocated_gpu(
    env: Mapping[str, str] | None = None, gpus: Sequence[dict[str, Any]] | None = None
) -> int:
    """NVML index of the first GPU Slurm gave this task (from CUDA_VISIBLE_DEVICES)."""
    from nnr_profile.profiler.collectors.nvml import list_gpus

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
