"""One trial in a fresh subprocess, with a timeout; crashes and hangs come back as results."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, TrialResult, TrialSpec
from nnr_profile.profiler.collectors.base import ARTIFACT_DIR_ENV, artifact_base, get_collector
from nnr_profile.profiler.runner.child import child_environment, spawn_child
from nnr_profile.profiler.runner.environment import host_fingerprint
from nnr_profile.profiler.runner.trial import run_trial


def spawn_trial(
    spec: TrialSpec,
    timeout_s: float | None = None,
    artifact_dir: Path | None = None,
    start: str = "cold",
) -> TrialResult:
    """Run `spec` in its own process; kill it (and its children) after `timeout_s` seconds.

    A collector other than `timing` may wrap the process (nsys, nvprof) and keeps its files in
    `artifact_dir` (default: the system's temporary folder). `start` is `cold` (a fresh
    interpreter) or `warm` (forked by the framework's warm server where it can start warm and no
    collector wraps the process: `profiler.runner.warm`); the trial records which it got.
    """
    began = time.perf_counter()
    collector = get_collector(spec.collector)
    folder = Path(artifact_dir or tempfile.gettempdir()).resolve()
    base = artifact_base(spec, folder)
    if spec.collector != "timing":
        folder.mkdir(parents=True, exist_ok=True)
    env = child_environment(spec.framework, spec.workload, spec.mode, spec.gpu_index, spec.seed)
    env.update(collector.environment())
    env[ARTIFACT_DIR_ENV] = str(folder)
    warm = spec.framework if start == "warm" else None
    prefix = collector.command_prefix(base)
    outcome = spawn_child(run_trial, spec, env, timeout_s, prefix=prefix, warm=warm)
    if outcome.result is None:
        error = f"trial {outcome.error}" if outcome.error else None
        return TrialResult(
            spec,
            outcome.status,
            error=error,
            wall_s=time.perf_counter() - began,
            environment=host_fingerprint(spec.gpu_index),
        )
    result = TrialResult.from_dict(outcome.result)
    if result.status == STATUS_OK:
        try:
            collector.finish(result, base)
        except Exception as exc:
            result.status = STATUS_FAILED
            result.error = f"collector {spec.collector} could not read its capture: {exc}"
    return result
