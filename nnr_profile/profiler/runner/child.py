"""The one child-process protocol: a registered task, run in a fresh process with a timeout.

Trials, verify runs, variability replicas and grad-SNR measurements each run in a fresh
process (determinism must be set before a framework initialises its GPU context). A *task*
is a function registered with `@child_task(decode=...)`: it takes the decoded spec and
returns its result value (a mapping, or an object with `to_dict()`), whose NumPy arrays
travel as ``.npy`` files beside the result. `spawn_child(task, spec, env, timeout_s)` runs it
in its own process and returns a `ChildOutcome`; `run_task` is the child's side (decode, run,
encode, and an exception mapped to an error value). Errors come back as values, never as
exceptions: a task that raised, a crash and a timeout are failed or timed-out outcomes.

`child_environment` is the child's process environment: the mode's variables from the
framework's knob code (`nnr_profile.workloads.<framework>.knobs`), GPU pinning and hash seed.
It is the one place the mode's environment is applied: the child starts with it, before any
framework is imported.

A child never outlives its parent: it runs in a session of its own under
`profiler.runner.lifeline` (parent-death signal, lifeline pipe, timeout alarm, child subreaper);
when it ends, times out or its parent is interrupted (`stop_children`), every process it
started is killed, its process group and any descendant that left it (`setsid`, a daemon's
double fork: `lifeline.kill_descendants`, found by parent pid and by the child's folder in
their environment; on Linux); and folders left by a parent that was killed are removed by the
next parent.
"""

from __future__ import annotations

import contextlib
import importlib
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
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import Mode
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, STATUS_TIMEOUT
from nnr_profile.profiler.runner.lifeline import (
    FOLDER_ENV,
    FOLDER_PREFIX,
    LIFELINE_ENV,
    TIMEOUT_ENV,
    kill_descendants,
    remove_stale_folders,
)
from nnr_profile.profiler.runner.warm import (
    WarmChild,
    WarmStartUnavailable,
    close_servers,
    warm_fork,
    warm_server,
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
ARRAY_NAME = re.compile(r"^[A-Za-z_]\w*$")
TRACEBACK_LIMIT = 8

Task = TypeVar("Task", bound=Callable[..., Any])


@dataclass(frozen=True)
class ChildTask:
    """A function a child process may run: `run(decode(spec))` is its result value."""

    name: str
    run: Callable[[Any], Any]
    decode: Callable[[Any], Any] | None = None


_tasks: dict[str, ChildTask] = {}


def child_task(decode: Callable[[Any], Any] | None = None) -> Callable[[Task], Task]:
    """Decorator: register the module-level `function(spec) -> result` as a task (`decode`
    turns the JSON spec into what it takes); the function is returned unchanged."""

    def register(function: Task) -> Task:
        name = f"{function.__module__}:{function.__qualname__}"
        if "<locals>" in name:
            raise UsageError(f"{name}: a child task must be defined at module level")
        _tasks[name] = ChildTask(name, function, decode)
        return function

    return register


def task_name(task: Callable[..., Any]) -> str:
    """The registered name of `task` (`module:qualname`); a UsageError for an unregistered one."""
    name = f"{task.__module__}:{task.__qualname__}"
    if _tasks.get(name) is None or _tasks[name].run is not task:
        raise UsageError(f"{name} is not a child task: decorate it with @child_task()")
    return name


@dataclass
class ChildOutcome:
    """What a child process left: status, its result value (None when it failed to give one:
    crash, timeout, or the task raised), the error, wall time, and the traceback of a raise."""

    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    wall_s: float = 0.0
    traceback: str | None = None


class ChildrenStopped(Exception):
    """Raised by `spawn_child` once `stop_children` has run: the parent is shutting down."""


_lock = threading.Lock()
_live: dict[int, Path] = {}
_stopping = threading.Event()
_stale_checked = False


def stop_children() -> int:
    """Kill every running child with all it started and remove its folder; end the warm
    servers (`profiler.runner.warm`); start no more.

    Returns how many were running. `spawn_child` raises `ChildrenStopped` from then on, until
    `allow_children`.
    """
    with _lock:
        _stopping.set()
        for pid, folder in _live.items():
            _kill_all(pid, folder, running=True)
            shutil.rmtree(folder, ignore_errors=True)
        close_servers()
        return len(_live)


def allow_children() -> None:
    """Undo `stop_children` (for a new run in the same process)."""
    _stopping.clear()


def cpu_threads() -> int:
    """Intra-op threads for a CPU child: every core this process may use but one (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def child_environment(
    framework: str,
    workload: str,
    mode: Mode,
    gpu_index: int | None,
    seed: int,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A child's process environment: the mode's variables, GPU pinning, hash seed.

    The mode's variables come from the framework's knob code, unless the workload sets no knob
    by design (`calibrate`). On the CPU, OMP_NUM_THREADS (unless set already) is
    `cpu_threads()`: in benchmarks/fidelity.py a trial on every core gave no narrower interval
    on a quiet machine and a wrong one whenever anything else ran (spin-waiting threads
    collapse); one core left to the parent keeps it.
    """
    from nnr_profile.workloads.knobs import mode_environment
    from nnr_profile.workloads.registry import get_workload

    env = dict(os.environ if base is None else base)
    if get_workload(framework, workload).applies_knobs:
        env.update(mode_environment(mode, framework))
    if gpu_index is None:
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("OMP_NUM_THREADS", str(cpu_threads()))
    else:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = str(gpu_index)
    env["PYTHONHASHSEED"] = str(seed)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def spawn_child(
    task: Callable[..., Any],
    spec: Any,
    env: Mapping[str, str],
    timeout_s: float | None = None,
    prefix: Sequence[str] = (),
    warm: str | None = None,
) -> ChildOutcome:
    """Run the registered `task` on `spec` (a mapping, or an object with `to_dict()`) in its
    own process with environment `env`; kill its group after `timeout_s` seconds.

    `prefix` wraps the command (e.g. `nsys profile ...`). `warm` names a framework whose warm
    server forks the process (`profiler.runner.warm`); without a prefix only, and a fresh
    interpreter where that framework cannot start warm. The outcome's `result` is the task's
    value with its arrays read back; its status is the value's `status` (ok when it has none).
    """
    name = task_name(task)
    payload = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    _remove_stale_folders_once()
    began = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
    try:
        spec_path, result_path = folder / "spec.json", folder / "result.json"
        envelope = {"task": name, "spec": payload}
        spec_path.write_text(json.dumps(envelope, default=str), encoding="utf-8")
        command = [sys.executable, "-m", "nnr_profile.profiler.runner.lifeline"]
        command += [str(spec_path), str(result_path)]
        if prefix:
            shim = [sys.executable, "-S", "-c", WRAPPER_SHIM, str(os.getpid())]
            command = [*shim, *prefix, *command]
        with open(folder / "stderr.txt", "w+b") as stderr:
            start = None if prefix else warm
            process, lifeline = _start(command, env, stderr, folder, timeout_s, start)
            finished = _wait(process, lifeline, timeout_s, folder)
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
        return _outcome(json.loads(result_path.read_text(encoding="utf-8")), folder, wall_s)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _outcome(document: Mapping[str, Any], folder: Path, wall_s: float) -> ChildOutcome:
    """The parent's reading of what `run_task` wrote (arrays loaded from their files)."""
    if not document.get("ok"):
        return ChildOutcome(
            STATUS_FAILED,
            error=document.get("error"),
            wall_s=wall_s,
            traceback=document.get("traceback"),
        )
    result = dict(document["value"])
    for key in document.get("arrays", []):
        result[key] = np.load(folder / f"{key}.npy")
    status = result.get("status", STATUS_OK)
    return ChildOutcome(status, result, result.get("error"), wall_s)


def run_task(spec_path: str | Path, result_path: str | Path) -> int:
    """The child's side: decode the spec, run its task, encode the value (arrays as .npy files
    beside the result); a task that raises becomes an error value. Returns the exit code."""
    began = time.perf_counter()
    try:
        envelope = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        task = _resolve(envelope["task"])
        spec = task.decode(envelope["spec"]) if task.decode else envelope["spec"]
        value = task.run(spec)
        data = dict(value.to_dict() if hasattr(value, "to_dict") else value)
        arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray)}
        for key, array in arrays.items():
            if not ARRAY_NAME.match(key):
                raise ValueError(f"array result {key!r} is not a plain name")
            np.save(Path(result_path).parent / f"{key}.npy", array)
        data = {k: v for k, v in data.items() if k not in arrays}
        data.setdefault("wall_s", time.perf_counter() - began)
        document: dict[str, Any] = {"ok": True, "value": data, "arrays": sorted(arrays)}
    except Exception as exc:
        document = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=TRACEBACK_LIMIT),
        }
    _write_result(result_path, document)
    return 0


def _resolve(name: str) -> ChildTask:
    """The task registered as `module:qualname`, importing its module."""
    module, _, _ = name.partition(":")
    importlib.import_module(module)
    if name not in _tasks:
        raise UsageError(f"{name} is not a registered child task")
    return _tasks[name]


def _start(
    command: list[str],
    env: Mapping[str, str],
    stderr: Any,
    folder: Path,
    timeout_s: float | None,
    warm: str | None = None,
) -> tuple[subprocess.Popen | WarmChild, int]:
    """Start the child in a session of its own (forked by `warm`'s server when it can start
    warm); register it; (process, lifeline write end)."""
    read_end, write_end = os.pipe()
    child_env = dict(env)
    child_env[LIFELINE_ENV] = f"{read_end}:{os.fstat(read_end).st_ino}"
    child_env[FOLDER_ENV] = str(folder)
    if timeout_s is not None:
        child_env[TIMEOUT_ENV] = f"{timeout_s:g}"
    try:
        if warm is not None:
            with contextlib.suppress(WarmStartUnavailable):
                warm_server(warm, env)  # started outside the lock: its imports take seconds
        with _lock:
            if _stopping.is_set():
                raise ChildrenStopped("the parent is shutting down")
            process: subprocess.Popen | WarmChild | None = None
            if warm is not None:
                process = warm_fork(warm, command[-2:], child_env, (read_end, stderr.fileno()))
            if process is None:
                process = _popen(command, child_env, stderr, read_end)
            _live[process.pid] = folder
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return process, write_end


def _popen(
    command: list[str], env: Mapping[str, str], stderr: Any, lifeline: int
) -> subprocess.Popen:
    """A cold child: a fresh interpreter in a session of its own."""
    return subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
        pass_fds=(lifeline,),
    )


def _wait(
    process: subprocess.Popen | WarmChild, lifeline: int, timeout_s: float | None, folder: Path
) -> bool:
    """Wait for the child (True) or its timeout (False); always kill all it started, reap it."""
    finished = False
    try:
        finished = _wait_exited(process, timeout_s)
    finally:
        with _lock:
            _live.pop(process.pid, None)
        _kill_all(process.pid, folder, running=not finished)
        process.wait()
        os.close(lifeline)
    return finished


def _kill_all(pid: int, folder: Path, running: bool) -> None:
    """SIGKILL the child `pid` started (unreaped) with `folder`, its descendants and its group.

    A running child is stopped first, so it forks nothing while its descendants are found:
    those under it (the lifeline is their subreaper, so an orphan stays under it) and any
    process whose environment names its folder (what left after the lifeline died, e.g. by a
    crash). Then the group: leftovers too, as the group outlives its leader.
    """
    if running:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGSTOP)
    kill_descendants(pid, marker=f"{FOLDER_ENV}={folder}")
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _wait_exited(process: subprocess.Popen | WarmChild, timeout_s: float | None) -> bool:
    """Whether the child exited within `timeout_s`, leaving it unreaped (its group stays valid)."""
    if isinstance(process, WarmChild):
        return process.exited(timeout_s)
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


def _write_result(result_path: str | Path, data: Mapping[str, Any]) -> None:
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
