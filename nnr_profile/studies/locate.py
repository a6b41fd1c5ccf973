"""`verify --locate`: where do two runs of one mode first part? (iteration, module, phase).

Every verify run records a hash of each module's tensors in execution order into a stream file
of its own (PyTorch: `locate_torch`; TensorFlow: `locate_tf`), in its own process like any
verify run. The streams of run 1 and each other run are then compared line by line, stopping
at the first difference: every tensor recorded before it, its inputs among them, was equal.
Only the two tensors of that record are then kept, by re-running both runs up to it (the
capture runs), for the largest absolute difference. Verdicts (losses, weights) are those of
the recorded runs, computed exactly as plain `verify` does.
"""

from __future__ import annotations

import contextlib
import importlib
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.modes import Mode
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, TrialSpec
from nnr_profile.core.text import slug
from nnr_profile.profiler.runner.child import child_task, spawn_child
from nnr_profile.profiler.runner.trial import prepare_run
from nnr_profile.studies.locate_stream import (
    Divergence,
    StreamWriter,
    describe,
    first_difference,
    max_abs_diff,
    read_stream,
)
from nnr_profile.studies.verify import (
    RunRecord,
    VerifyReport,
    VerifySpec,
    ops_from_error,
    ops_from_warnings,
    run_environment,
    run_record,
    session_weights,
    verify,
    verify_session,
)

RECORDERS = {
    "torch": "nnr_profile.studies.locate_torch",
    "tf": "nnr_profile.studies.locate_tf",
}
"""The module that records a run's per-module values, per framework (JAX has none yet)."""


def check_locatable(framework: str) -> None:
    """A ParameterError when `framework` has no per-module recorder for `--locate`."""
    if framework not in RECORDERS:
        raise ParameterError(
            "locate",
            "records per-module values in {frameworks} only, not {framework}",
            frameworks=" and ".join(RECORDERS),
            framework=framework,
        )


@dataclass
class LocateReport(VerifyReport):
    """The verify report of the recorded runs, and per mode where its runs first part."""

    divergences: dict[str, Divergence | None] = field(default_factory=dict)
    wall_s: float = 0.0

    def located(self, mode: str) -> str | None:
        """The located line for `mode`, or None when its streams agree."""
        divergence = self.divergences.get(mode)
        return divergence.text() if divergence else None

    def to_dict(self) -> dict[str, Any]:
        """Mode -> verdict dict with a `located` entry (null when the streams agree)."""
        data = super().to_dict()
        for mode, divergence in self.divergences.items():
            data[mode]["located"] = divergence.to_dict() if divergence else None
        return data


def launch_recorded(
    spec: TrialSpec,
    timeout_s: float | None,
    stream: Path | None,
    capture: int | None = None,
    reference: Path | None = None,
    start: str = "cold",
) -> tuple[RunRecord, dict[str, Any]]:
    """One recorded run in its own process, started `start` (warm or cold): (record, its result
    JSON plus the arrays it kept).

    It writes its stream to `stream`; with `capture`, stops at that record and keeps its tensor
    (`capture`); with `reference`, keeps the tensor of the first record that differs from that
    stream (`mismatch`, at `mismatch_index`).
    """
    payload = {
        "trial": spec.to_dict(),
        "stream": str(stream) if stream else None,
        "capture": capture,
        "reference": str(reference) if reference else None,
    }
    warm = spec.framework if start == "warm" else None
    outcome = spawn_child(recorded_run, payload, run_environment(spec), timeout_s, warm=warm)
    return run_record(outcome), outcome.result or {}


def _stream_path(folder: Path, mode: Mode, run: int) -> Path:
    return folder / f"{slug(mode.name)}-run{run}.tsv"


def locate(
    spec: VerifySpec,
    on_run: Callable[[Mode, int, RunRecord], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> LocateReport:
    """Verify with every run recorded; per mode, locate the first differing tensor."""
    began = time.perf_counter()
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nnr-locate-") as tmp:
        folder = Path(tmp)

        def launch(trial: TrialSpec, timeout_s: float | None) -> RunRecord:
            stream = _stream_path(folder, trial.mode, trial.repeat)
            first = _stream_path(folder, trial.mode, 0)
            reference = first if trial.repeat > 0 and first.exists() else None
            record, data = launch_recorded(
                trial, timeout_s, stream, None, reference, spec.trial_start
            )
            kept[(trial.mode.name, trial.repeat)] = data
            return record

        report = verify(spec, on_run=on_run, launch=launch)
        divergences: dict[str, Divergence | None] = {}
        for mode in spec.modes:
            divergence = _first_divergence(folder, mode, spec.runs)
            if divergence is not None and divergence.phase is not None:
                if on_note:
                    note = f"re-running run 1 up to record {divergence.record_index}"
                    on_note(f"  {mode.name}: {note} for its tensor")
                other = kept.get((mode.name, divergence.runs[1]), {})
                divergence.max_abs_diff = _capture_diff(spec, mode, divergence, other)
                divergence.nondeterministic_ops = _ops_within(
                    divergence.module or "model",
                    [
                        kept.get((mode.name, run), {}).get("module_ops", {})
                        for run in divergence.runs
                    ],
                )
            divergences[mode.name] = divergence
    return LocateReport(
        report.verdicts,
        report.device,
        report.workload,
        report.framework,
        divergences,
        time.perf_counter() - began,
    )


def _first_divergence(folder: Path, mode: Mode, runs: int) -> Divergence | None:
    """The earliest difference between run 0's stream and any other run's."""
    first = _stream_path(folder, mode, 0)
    found = None
    for run in range(1, runs):
        other = _stream_path(folder, mode, run)
        if not first.exists() or not other.exists():
            continue
        difference = first_difference(first, other)
        if difference is not None and (found is None or difference.index < found[0].index):
            found = (difference, run)
    return describe(found[0], (0, found[1])) if found else None


def _capture_diff(
    spec: VerifySpec, mode: Mode, divergence: Divergence, other: dict[str, Any]
) -> float | None:
    """Max |difference| of the located tensor: the other run kept its own (the first record
    that differed from run 1's stream); run 1 is re-run up to the record to keep its copy."""
    arrays = []
    for run in divergence.runs:
        if run > 0 and other.get("mismatch_index") == divergence.record_index:
            arrays.append(other.get("mismatch"))
            continue
        trial = replace(spec.trial, mode=mode, repeat=run)
        _, data = launch_recorded(
            trial, spec.timeout_s, None, divergence.record_index, start=spec.trial_start
        )
        arrays.append(data.get("capture"))
    if any(array is None for array in arrays):
        return None
    return max_abs_diff(arrays[0], arrays[1])


def _ops_within(module: str, per_run: list[dict[str, list[str]]]) -> list[str]:
    """Ops attributed to `module` or a module inside it, in any of the runs."""
    ops = set()
    for mapping in per_run:
        for name, names in mapping.items():
            if module in ("model", name) or name.startswith(module + "."):
                ops.update(names)
    return sorted(ops)


def prepare_session(spec: TrialSpec) -> tuple[Any, dict[str, Any]]:
    """Mode, seeds and the session, as a verify run prepares them (warn_only in PyTorch):
    (session, environment fingerprint)."""
    run = prepare_run(spec)
    return verify_session(run, spec), run.environment


def run_located(
    spec: TrialSpec, stream: Path | None, capture: int | None, reference: Path | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One recorded run in this process: (result dict, arrays: weights, capture, mismatch)."""
    result: dict[str, Any] = {"status": STATUS_FAILED, "losses": [], "module_ops": {}}
    arrays: dict[str, np.ndarray] = {}
    with warnings.catch_warnings(record=True) as caught, contextlib.ExitStack() as stack:
        warnings.simplefilter("always")
        try:
            handle = stack.enter_context(open(stream, "w", encoding="utf-8")) if stream else None
            writer = StreamWriter(handle, capture, read_stream(reference) if reference else None)
            session, result["environment"] = prepare_session(spec)
            run_recorded = importlib.import_module(RECORDERS[spec.framework]).run_recorded
            steps = spec.warmup + spec.iterations
            handles, module_ops, captured = run_recorded(session, steps, writer)
            result["module_ops"] = module_ops
            if captured is not None:
                arrays["capture"] = captured
            else:
                result["losses"] = [session.loss_value(h) for h in handles]
                result["weights_hash"] = session.weights_hash()
                weights = session_weights(session)
                if weights is not None:
                    arrays["weights"] = weights
            if writer.mismatch is not None:
                result["mismatch_index"], arrays["mismatch"] = writer.mismatch
            result["records"] = writer.count
            result["status"] = STATUS_OK
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["traceback"] = traceback.format_exc(limit=6)
        messages = [str(w.message) for w in caught]
    ops = set(ops_from_warnings(messages)) | set(ops_from_error(result.get("error")))
    ops.update(op for names in result["module_ops"].values() for op in names)
    result["nondeterministic_ops"] = sorted(ops)
    return result, arrays


@child_task()
def recorded_run(payload: dict[str, Any]) -> dict[str, Any]:
    """The child task of one recorded run: its result dict with the arrays it kept."""
    spec = TrialSpec.from_dict(payload["trial"])
    stream, reference = (
        Path(payload[k]) if payload.get(k) else None for k in ("stream", "reference")
    )
    result, arrays = run_located(spec, stream, payload.get("capture"), reference)
    return {**result, **arrays}
