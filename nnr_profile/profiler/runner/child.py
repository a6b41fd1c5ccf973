"""Run a `python -m MODULE SPEC.json RESULT.json` child process: timeout, crash capture, files.

The verify runs, variability replicas and grad-SNR measurements each run in a fresh process
(determinism must be set before a framework initialises its GPU context), exactly as
`process.spawn_trial` runs trials. A child writes RESULT.json (and may write further files
into the same temporary folder, e.g. ``weights.npy``); the parent reads them back through
`ChildOutcome` before the folder is removed. Errors come back as values, never as exceptions.

A child never outlives its parent: it runs in a session of its own under
`profiler.runner.lifeline` (parent-death signal, lifeline pipe, timeout alarm); its process
group is killed when it ends, times out or its parent is interrupted (`stop_children`); and
folders left by a parent that was killed are removed by the next parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnr_profile.core.modes import Mode, mode_env
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, STATUS_TIMEOUT
from nnr_profile.profiler.runner.lifeline import (
    FOLDER_ENV,
    FOLDER_PREFIX,
    LIFELINE_ENV,
    TIMEOUT_ENV,
    remove_stale_folders,
)

STDERR_TAIL_CHARS = 8000
ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt)\b")
FATAL_LINE = re.compile(r"^Fatal Python error")
WRAPPER_SHIM = (
    "import ctypes,os,sys\n"
    "if sys.platform.startswith('linux'): ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)
"""Runs a wrapper (a profiler) with SIGKILL as its parent-death signal, then execs it."""


@dataclass
class ChildOutcome:
    """What a child process left: status, its result JSON (or None), extra files read back."""

    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    wall_s: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)


class ChildrenStopped(Exception):
    """Raised by `launch_child` once `stop_children` has run: the parent is shutting down."""


_lock = threading.Lock()
_live: dict[int, Path] = {}
_stopping = threading.Event()
_stale_checked = False


def stop_children() -> int:
    """Kill every running child's process group and remove its folder; start no more children.

    Returns how many were running. `launch_child` raises `ChildrenStopped` from then on, until
    `allow_children`.
    """
    with _lock:
        _stopping.set()
        for pid, folder in _live.items():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            shutil.rmtree(folder, ignore_errors=True)
        return len(_live)


def allow_children() -> None:
    """Undo `stop_children` (for a new run in the same process)."""
    _stopping.clear()


def running_children() -> list[int]:
    """Process ids of the children running now."""
    with _lock:
        return list(_live)


def cpu_threads() -> int:
    """Intra-op threads for a CPU child: every core this process may use but one (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def child_environment(
    mode: Mode,
    framework: str,
    gpu_index: int | None,
    seed: int,
    base: Mapping | None = None,
    knobs: bool = True,
) -> dict[str, str]:
    """The process environment: mode variables (when `knobs`), GPU pinning, hash seed.

    On the CPU, OMP_NUM_THREADS (unless set already) is `cpu_threads()`: in benchmarks/fidelity.py
    a trial on every core gave no narrower interval on a quiet machine and a wrong one whenever
    anything else ran (spin-waiting threads collapse); one core left to the parent keeps it.
    """
    env = dict(os.environ if base is None else base)
    if knobs:
        env.update(mode_env(mode, framework))
    if gpu_index is None:
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("OMP_NUM_THREADS", str(cpu_threads()))
    else:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = str(gpu_index)
    env["PYTHONHASHSEED"] = str(seed)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def launch_child(
    module: str,
    spec: Mapping[str, Any],
    env: Mapping[str, str],
    timeout_s: float | None = None,
    read_extras: Callable[[Path], dict[str, Any]] | None = None,
    prefix: Sequence[str] = (),
) -> ChildOutcome:
    """Run `python -m module SPEC RESULT` with `spec` as JSON; kill its group after `timeout_s`.

    `read_extras(folder)` is called (when the result exists) to read further files the child
    wrote next to RESULT.json before the temporary folder is removed. `prefix` wraps the
    command (e.g. `nsys profile ...`).
    """
    _remove_stale_folders_once()
    began = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
    try:
        spec_path, result_path = folder / "spec.json", folder / "result.json"
        spec_path.write_text(json.dumps(dict(spec), default=str), encoding="utf-8")
        command = [sys.executable, "-m", "nnr_profile.profiler.runner.lifeline", module]
        command += [str(spec_path), str(result_path)]
        if prefix:
            shim = [sys.executable, "-S", "-c", WRAPPER_SHIM, str(os.getpid())]
            command = [*shim, *prefix, *command]
        with open(folder / "stderr.txt", "w+b") as stderr:
            process, lifeline = _start(command, env, stderr, folder, timeout_s)
            finished = _wait(process, lifeline, timeout_s)
            if _stopping.is_set():
                raise ChildrenStopped("the parent is shutting down")
            if not finished:
                return ChildOutcome(
                    STATUS_TIMEOUT,
                    error=f"process did not finish within --timeout {timeout_s:g} s and was killed",
                    wall_s=time.perf_counter() - began,
                )
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-STDERR_TAIL_CHARS:]
        wall_s = time.perf_counter() - began
        if not result_path.exists():
            return ChildOutcome(
                STATUS_FAILED, error=crash_message(process.returncode, tail), wall_s=wall_s
            )
        result = json.loads(result_path.read_text(encoding="utf-8"))
        extras = read_extras(folder) if read_extras else {}
        status = result.get("status", STATUS_OK)
        return ChildOutcome(status, result, result.get("error"), wall_s, extras)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start(
    command: list[str], env: Mapping[str, str], stderr: Any, folder: Path, timeout_s: float | None
) -> tuple[subprocess.Popen, int]:
    """Start the child in a session of its own; register it; (process, lifeline write end)."""
    read_end, write_end = os.pipe()
    child_env = dict(env)
    child_env[LIFELINE_ENV] = f"{read_end}:{os.fstat(read_end).st_ino}"
    child_env[FOLDER_ENV] = str(folder)
    if timeout_s is not None:
        child_env[TIMEOUT_ENV] = f"{timeout_s:g}"
    try:
        with _lock:
            if _stopping.is_set():
                raise ChildrenStopped("the parent is shutting down")
            process = subprocess.Popen(
                command,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
                pass_fds=(read_end,),
            )
            _live[process.pid] = folder
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return process, write_end


def _wait(process: subprocess.Popen, lifeline: int, timeout_s: float | None) -> bool:
    """Wait for the child (True) or its timeout (False); always kill its group and reap it."""
    try:
        finished = _wait_exited(process, timeout_s)
    finally:
        with _lock:
            _live.pop(process.pid, None)
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers too: the group outlives its leader
        process.wait()
        os.close(lifeline)
    return finished


def _wait_exited(process: subprocess.Popen, timeout_s: float | None) -> bool:
    """Whether the child exited within `timeout_s`, leaving it unreaped (its group stays valid)."""
    if not hasattr(os, "waitid"):
        try:
            process.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    delay = 0.001
    while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def write_result(result_path: str | Path, data: Mapping[str, Any]) -> None:
    """Write a child's result JSON atomically (the parent treats a missing file as a crash)."""
    tmp_path = f"{result_path}.tmp"
    with open(tmp_path, "w", encoding="utf-8") as handle:
        json.dump(dict(data), handle, default=str)
    os.replace(tmp_path, result_path)


def crash_message(returncode: int, stderr: str) -> str:
    """How a child that wrote no result ended: the signal or exit code, and its error line.

    The error line is the last line that names an exception (`ValueError: ...`), else a
    `Fatal Python error` line, else the last line that is not a warning.
    """
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    line = error_line(stderr)
    return f"process {how} before writing a result" + (f": {line}" if line else "")


def error_line(stderr: str) -> str | None:
    """The most telling line of a child's stderr (see `crash_message`), or None.

    Warnings are never it: neither a line that says 'warning' nor the source line Python
    prints under a warning.
    """
    lines, after_warning = [], False
    for raw in stderr.splitlines():
        line = raw.strip()
        warning = "warning" in line.lower()
        if line and not warning and not (after_warning and raw[:1].isspace()):
            lines.append(line)
        after_warning = warning
    for pattern in (ERROR_LINE, FATAL_LINE):
        found = [line for line in lines if pattern.match(line)]
        if found:
            return found[-1]
    return lines[-1] if lines else None


def _remove_stale_folders_once() -> None:
    global _stale_checked
    if not _stale_checked:
        _stale_checked = True
        remove_stale_folders()
