"""Asking Slurm about submitted tasks without sacct (accounting is often off), and where a
submission notes its tasks so a later run finds the ones still running.

`squeue --states=all` lists queued, running and recently ended tasks (for MinJobAge, 5 min
by default); a task it no longer lists has ended. Each submitted array leaves
`<results-dir>/submitit/<array id>/cells.json`: its tasks' ids, cells, logs and the stamps of
the cells' shards before they ran (JSON, never a pickle).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import NnrError

LIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SUSPENDED",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
    }
)
"""Task states in which a task may still write its shard."""
GONE = "no longer listed by squeue"
MANIFEST = "cells.json"


def queue_states(job_ids: Sequence[str]) -> dict[str, str]:
    """State of each task Slurm lists for these jobs, by task id ('ARRAY_INDEX', or 'JOB')."""
    arrays = list(dict.fromkeys(job_id.split("_")[0] for job_id in job_ids))
    if not arrays:
        return {}
    command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T"]
    try:
        proc = subprocess.run(
            [*command, f"--jobs={','.join(arrays)}"], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NnrError(f"asking Slurm for the tasks' states failed: squeue: {exc}") from exc
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return {}  # every job named has ended and left Slurm's memory
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise NnrError(f"asking Slurm for the tasks' states failed: squeue: {reason}")
    states = {}
    for line in proc.stdout.splitlines():
        task_id, _, state = line.strip().partition("|")
        if task_id:
            states[task_id] = state.split()[0] if state.strip() else state
    return states


def write_manifest(folder: Path, array_id: str, tasks: list[dict[str, Any]]) -> Path:
    """Note an array's tasks in `<folder>/<array_id>/cells.json` (replaced atomically)."""
    path = folder / array_id / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    staging.write_text(json.dumps({"array": array_id, "tasks": tasks}, indent=1))
    os.replace(staging, path)
    return path


def read_manifests(folder: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Every readable manifest under `folder` with its tasks (unreadable ones are skipped)."""
    found = []
    for path in sorted(folder.glob(f"*/{MANIFEST}")):
        try:
            tasks = json.loads(path.read_text())["tasks"]
            if all({"job_id", "cell_key", "log"} <= set(task) for task in tasks):
                found.append((path, tasks))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
