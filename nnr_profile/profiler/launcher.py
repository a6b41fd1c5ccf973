"""One trial in a fresh subprocess, with a timeout; crashes and hangs come back as results."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnr_profile.profiler.collectors.base import ARTIFACT_DIR_ENV, artifact_base, get_collector
from nnr_profile.profiler.determinism import mode_env
from nnr_profile.profiler.trial import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_TIMEOUT,
    TrialResult,
    TrialSpec,
)

STDERR_TAIL_CHARS = 2000


def trial_environment(spec: TrialSpec, base: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment for `spec`: mode variables, GPU pinning, hash seed."""
    env = dict(os.environ if base is None else base)
    env.update(mode_env(spec.mode, spec.framework))
    if spec.gpu_index is None:
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = str(spec.gpu_index)
    env["PYTHONHASHSEED"] = str(spec.seed)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def launch_trial(
    spec: TrialSpec, timeout_s: float | None = None, artifact_dir: Path | None = None
) -> TrialResult:
    """Run `spec` in its own process; kill it (and its children) after `timeout_s` seconds.

    A collector other than `timing` may wrap the process (nsys, nvprof) and keeps its files in
    `artifact_dir` (default: the system's temporary folder).
    """
    began = time.perf_counter()
    collector = get_collector(spec.collector)
    folder = Path(artifact_dir or tempfile.gettempdir()).resolve()
    base = artifact_base(spec, folder)
    if spec.collector != "timing":
        folder.mkdir(parents=True, exist_ok=True)
    result = _launch(
        spec,
        timeout_s,
        collector.command_prefix(base),
        {**collector.environment(), ARTIFACT_DIR_ENV: str(folder)},
        began,
    )
    if result.status == STATUS_OK:
        try:
            collector.finish(result, base)
        except Exception as exc:
            result.status = STATUS_FAILED
            result.error = f"collector {spec.collector} could not read its capture: {exc}"
    return result


def _launch(
    spec: TrialSpec,
    timeout_s: float | None,
    prefix: list[str],
    extra_env: dict[str, str],
    began: float,
) -> TrialResult:
    with tempfile.TemporaryDirectory(prefix="nnr-trial-") as tmp:
        spec_path = Path(tmp, "spec.json")
        result_path = Path(tmp, "result.json")
        spec_path.write_text(json.dumps(spec.to_dict()), encoding="utf-8")
        stderr_path = Path(tmp, "stderr.txt")
        with open(stderr_path, "w+b") as stderr:
            process = subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-m",
                    "nnr_profile.profiler.trial",
                    str(spec_path),
                    str(result_path),
                ],
                env={**trial_environment(spec), **extra_env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return TrialResult(
                    spec=spec,
                    status=STATUS_TIMEOUT,
                    error=f"trial did not finish within --timeout {timeout_s:g} s and was killed",
                    wall_s=time.perf_counter() - began,
                )
            except BaseException:
                _kill_group(process)
                raise
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-STDERR_TAIL_CHARS:]
        if result_path.exists():
            return TrialResult.from_dict(json.loads(result_path.read_text(encoding="utf-8")))
        return TrialResult(
            spec=spec,
            status=STATUS_FAILED,
            error=_crash_text(process.returncode, tail),
            wall_s=time.perf_counter() - began,
        )


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
    return f"trial process {how} before writing a result{detail}"


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
