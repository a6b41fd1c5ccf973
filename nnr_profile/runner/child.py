"""Run a `python -m MODULE SPEC.json RESULT.json` child process: timeout, crash capture, files.

The verify runs, variability replicas and grad-SNR measurements each run in a fresh process
(determinism must be set before a framework initialises its GPU context), exactly as
`process.spawn_trial` runs trials. A child writes RESULT.json (and may write further files
into the same temporary folder, e.g. ``weights.npy``); the parent reads them back through
`ChildOutcome` before the folder is removed. Errors come back as values, never as exceptions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnr_profile.core.modes import Mode, mode_env
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, STATUS_TIMEOUT

STDERR_TAIL_CHARS = 2000


@dataclass
class ChildOutcome:
    """What a child process left: status, its result JSON (or None), extra files read back."""

    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    wall_s: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)


def child_environment(
    mode: Mode, framework: str, gpu_index: int | None, seed: int, base: Mapping | None = None
) -> dict[str, str]:
    """The process environment: mode variables, GPU pinning (none on the CPU), hash seed."""
    env = dict(os.environ if base is None else base)
    env.update(mode_env(mode, framework))
    if gpu_index is None:
        env["CUDA_VISIBLE_DEVICES"] = ""
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
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nnr-child-") as tmp:
        spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
        spec_path.write_text(json.dumps(dict(spec), default=str), encoding="utf-8")
        with open(Path(tmp, "stderr.txt"), "w+b") as stderr:
            process = subprocess.Popen(
                [*prefix, sys.executable, "-m", module, str(spec_path), str(result_path)],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return ChildOutcome(
                    STATUS_TIMEOUT,
                    error=f"process did not finish within --timeout {timeout_s:g} s and was killed",
                    wall_s=time.perf_counter() - began,
                )
            except BaseException:
                _kill_group(process)
                raise
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-STDERR_TAIL_CHARS:]
        wall_s = time.perf_counter() - began
        if not result_path.exists():
            return ChildOutcome(
                STATUS_FAILED, error=_crash_text(process.returncode, tail), wall_s=wall_s
            )
        result = json.loads(result_path.read_text(encoding="utf-8"))
        extras = read_extras(Path(tmp)) if read_extras else {}
        status = result.get("status", STATUS_OK)
        return ChildOutcome(status, result, result.get("error"), wall_s, extras)


def write_result(result_path: str | Path, data: Mapping[str, Any]) -> None:
    """Write a child's result JSON atomically (the parent treats a missing file as a crash)."""
    tmp_path = f"{result_path}.tmp"
    with open(tmp_path, "w", encoding="utf-8") as handle:
        json.dump(dict(data), handle, default=str)
    os.replace(tmp_path, result_path)


def _crash_text(returncode: int, stderr_tail: str) -> str:
    if returncode < 0:
        try:
            how = f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    last = stderr_tail.strip().splitlines()[-1:] if stderr_tail.strip() else []
    detail = f": {last[0]}" if last else ""
    return f"process {how} before writing a result{detail}"


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
