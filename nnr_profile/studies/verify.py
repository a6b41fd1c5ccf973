"""`verify`: is training bitwise reproducible here? Run K times per mode and compare bitwise.

Each run is a fresh process (the child task `verify_run`, through `launch_run`) that trains
the workload like a trial does (same seeds every run, synthetic batch), records every
iteration's loss and keeps the final weights. Runs of one mode are then compared
bitwise: losses iteration by iteration, weights value by value.

PyTorch runs with ``torch.use_deterministic_algorithms(True, warn_only=True)`` when the mode
asks for deterministic algorithms, so an op without a deterministic implementation warns
instead of raising; the warnings are collected by op name. TensorFlow has no warn-only switch:
an op without a deterministic implementation raises, the run fails, and the op named in the
error is reported.

What the runs of the modes that turn determinism on found is one `OpProbe` (`verify_probe`),
which `nnr_profile.studies.ops` stores; `nnr-profile ops` runs the same child once per model.
"""

from __future__ import annotations

import re
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import Mode
from nnr_profile.core.params import POSITIVE, Range, require, require_seed
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK, OpProbe, TrialSpec
from nnr_profile.profiler.runner.child import (
    ChildOutcome,
    child_environment,
    child_task,
    spawn_child,
)
from nnr_profile.profiler.runner.trial import PreparedRun, prepare_run
from nnr_profile.profiler.runner.warm import check_trial_start

RUN_INDEX_ENV = "NNR_RUN_INDEX"
"""Set to the run's 0-based index in every verify run (test plugins use it to misbehave)."""
TORCH_ALERT = re.compile(r"^(.*?) does not have a deterministic implementation", re.S)
TF_ALERTS = (
    re.compile(r"(\w+) cannot be called when determinism is enabled"),
    re.compile(
        r"(?:GPU|CPU)? ?implementation of (.+?) (?:op )?(?:is )?not (?:currently )?available", re.I
    ),
    re.compile(r"([\w.]+) (?:op )?does not have a deterministic implementation", re.I),
    re.compile(r"(\w+) (?:is|are) not deterministic", re.I),
)


@dataclass(frozen=True)
class VerifySpec:
    """What to verify: one trial spec (workload, device, sizes, seed) run `runs` times per mode."""

    trial: TrialSpec
    modes: tuple[Mode, ...]
    runs: int = 2
    timeout_s: float | None = 1800.0
    trial_start: str = "warm"
    """How each run's process starts (`profiler.runner.warm`): warm where it can, or cold."""

    def __post_init__(self) -> None:
        check_trial_start(self.trial_start)
        require("runs", self.runs, Range(integer=True, min=2))
        if not self.modes:
            raise UsageError("verify needs at least one mode")
        require("timeout_s", self.timeout_s, POSITIVE, optional=True)
        require_seed("seed", self.trial.seed)


@dataclass
class RunRecord:
    """One verify run: status, per-iteration losses, final weights, ops without determinism."""

    status: str
    losses: list[float] = field(default_factory=list)
    weights: np.ndarray | None = None
    weights_hash: str | None = None
    nondeterministic_ops: list[str] = field(default_factory=list)
    error: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None


@dataclass
class ModeVerdict:
    """Per mode: reproducible, where runs part, largest weight difference, ops flagged.

    `first_divergent_iteration` is the first (0-based) iteration whose loss differs between
    any two runs; it equals the number of iterations when only the final weights differ, and
    is None when the runs agree. `max_abs_weight_diff` is the largest absolute difference of
    any weight between the first run and another (0.0 when identical, None when a run failed).
    """

    mode: str
    reproducible: bool
    first_divergent_iteration: int | None
    max_abs_weight_diff: float | None
    nondeterministic_ops: list[str]
    runs: int
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (keys as in the dataclass, without `mode`)."""
        return {
            "reproducible": self.reproducible,
            "first_divergent_iteration": self.first_divergent_iteration,
            "max_abs_weight_diff": self.max_abs_weight_diff,
            "nondeterministic_ops": self.nondeterministic_ops,
            "runs": self.runs,
            "errors": self.errors,
        }


@dataclass
class VerifyReport:
    """The verdict per mode, and the overall answer for the exit code."""

    verdicts: dict[str, ModeVerdict]
    device: str
    workload: str
    framework: str

    @property
    def passed(self) -> bool:
        """Whether the `deterministic` mode reproduced (every mode, when it was not checked)."""
        if "deterministic" in self.verdicts:
            return self.verdicts["deterministic"].reproducible
        return all(v.reproducible for v in self.verdicts.values())

    def to_dict(self) -> dict[str, Any]:
        """Mode name -> verdict dict (the `--json` output)."""
        return {name: v.to_dict() for name, v in self.verdicts.items()}


def _bits(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.uint64)


def compare_runs(mode: str, runs: Sequence[RunRecord]) -> ModeVerdict:
    """Compare runs of one mode bitwise (losses per iteration, then final weights)."""
    ops = sorted({op for run in runs for op in run.nondeterministic_ops})
    errors = [run.error for run in runs if run.status != STATUS_OK and run.error]
    if any(run.status != STATUS_OK for run in runs):
        return ModeVerdict(mode, False, None, None, ops, len(runs), errors)
    first, rest = runs[0], runs[1:]
    divergent: int | None = None
    for other in rest:
        a, b = _bits(first.losses), _bits(other.losses)
        n = min(len(a), len(b))
        differ = np.flatnonzero(a[:n] != b[:n])
        index = int(differ[0]) if differ.size else (n if len(a) != len(b) else None)
        if index is not None:
            divergent = index if divergent is None else min(divergent, index)
    max_diff: float | None = 0.0
    weights_equal = True
    for other in rest:
        if first.weights is None or other.weights is None:
            max_diff = None
            weights_equal = weights_equal and first.weights_hash == other.weights_hash
            continue
        if first.weights.shape != other.weights.shape:
            max_diff, weights_equal = float("inf"), False
            continue
        same = np.array_equal(first.weights.view(np.uint32), other.weights.view(np.uint32))
        weights_equal = weights_equal and same
        diff = np.abs(first.weights.astype(np.float64) - other.weights.astype(np.float64))
        if max_diff is not None:
            max_diff = max(max_diff, float(np.nanmax(diff)) if diff.size else 0.0)
    if divergent is None and not weights_equal:
        divergent = len(first.losses)
    return ModeVerdict(
        mode, divergent is None and weights_equal, divergent, max_diff, ops, len(runs), errors
    )


def probes_ops(mode: Mode, framework: str) -> bool:
    """Whether a run in `mode` finds ops without a deterministic implementation (it turns
    PyTorch's deterministic algorithms or TensorFlow's op determinism on)."""
    knob = "tf_op_determinism" if framework == "tf" else "deterministic_algorithms"
    return mode.is_on(knob)


def op_probe(spec: TrialSpec, records: Sequence[RunRecord], source: str) -> OpProbe:
    """What runs of `spec` with determinism on found: the ops flagged by any run.

    The probe is ok when a run finished or an op was found (a TensorFlow run stops at its first
    such op, so it is then incomplete); failed, with the first error, otherwise.
    """
    ops = sorted({op for record in records for op in record.nondeterministic_ops})
    finished = [record for record in records if record.status == STATUS_OK]
    errors = [record.error for record in records if record.error]
    environment = next((r.environment for r in records if r.environment), {})
    walls = [record.wall_s for record in records if record.wall_s is not None]
    return OpProbe(
        spec=spec,
        status=STATUS_OK if finished or ops else STATUS_FAILED,
        ops=ops,
        complete=bool(records) and len(finished) == len(records),
        source=source,
        error=errors[0] if errors else None,
        environment=environment,
        wall_s=sum(walls) if walls else None,
    )


def verify_probe(spec: VerifySpec, runs: Sequence[tuple[Mode, RunRecord]]) -> OpProbe | None:
    """The ops found by a verify call's (mode, record) runs in modes that turn determinism on
    (None when no mode did: the others cannot tell)."""
    from dataclasses import replace

    probing = [(mode, record) for mode, record in runs if probes_ops(mode, spec.trial.framework)]
    if not probing:
        return None
    trial = replace(spec.trial, mode=probing[0][0], repeat=0)
    return op_probe(trial, [record for _, record in probing], "verify")


def ops_from_warnings(messages: Sequence[str]) -> list[str]:
    """Op names from PyTorch's 'X does not have a deterministic implementation' warnings."""
    ops = set()
    for message in messages:
        match = TORCH_ALERT.search(message)
        if match:
            ops.add(match.group(1).strip())
    return sorted(ops)


def ops_from_error(error: str | None) -> list[str]:
    """Op names from an error raised for lack of a deterministic implementation (TF or torch)."""
    if not error or "determinis" not in error.lower():
        return []
    for pattern in (TORCH_ALERT, *TF_ALERTS):
        match = pattern.search(error.split(": ", 1)[-1])
        if match:
            return [match.group(1).strip()]
    return [error.splitlines()[0][:200]]


def session_weights(session: Any) -> np.ndarray | None:
    """Every parameter and buffer, sorted by name, as one float32 vector (None if unknown)."""
    model = getattr(session, "model", None)
    if model is None:
        return None
    if hasattr(model, "state_dict"):
        state = model.state_dict()
        parts = [
            state[name].detach().to("cpu").reshape(-1).float().numpy() for name in sorted(state)
        ]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if hasattr(model, "get_weights"):
        parts = [np.asarray(w, dtype=np.float32).reshape(-1) for w in model.get_weights()]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return None


def verify_session(run: PreparedRun, spec: TrialSpec) -> Any:
    """The session of a verify run: PyTorch ops without a deterministic implementation warn
    (warn_only) where the mode asks for deterministic algorithms, instead of raising."""
    torch_alerts = spec.framework == "torch" and spec.mode.is_on("deterministic_algorithms")
    if run.workload.applies_knobs and torch_alerts:
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
    return run.session(spec)


def run_once(spec: TrialSpec) -> tuple[RunRecord, list[str]]:
    """One verify run in this process: (record, raw determinism warnings)."""
    record = RunRecord(status=STATUS_FAILED)
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run = prepare_run(spec)
            record.environment = run.environment
            session = verify_session(run, spec)
            handles = [session.step() for _ in range(spec.warmup + spec.iterations)]
            session.sync()
            record.losses = [session.loss_value(h) for h in handles]
            record.weights_hash = session.weights_hash()
            record.weights = session_weights(session)
            record.status = STATUS_OK
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            messages.append(traceback.format_exc(limit=4))
        messages += [str(w.message) for w in caught]
    record.nondeterministic_ops = sorted(
        set(ops_from_warnings(messages)) | set(ops_from_error(record.error))
    )
    return record, messages


@child_task(decode=TrialSpec.from_dict)
def verify_run(spec: TrialSpec) -> dict[str, Any]:
    """The child task of one verify run: the record's fields, `weights` as an array."""
    record, _ = run_once(spec)
    return {
        "status": record.status,
        "losses": record.losses,
        "weights": record.weights,
        "weights_hash": record.weights_hash,
        "nondeterministic_ops": record.nondeterministic_ops,
        "error": record.error,
        "environment": record.environment,
    }


def run_environment(spec: TrialSpec) -> dict[str, str]:
    """The environment of one verify run: as `child_environment`, plus its run index."""
    env = child_environment(spec.framework, spec.workload, spec.mode, spec.gpu_index, spec.seed)
    env[RUN_INDEX_ENV] = str(spec.repeat)
    return env


def launch_run(spec: TrialSpec, timeout_s: float | None, start: str = "cold") -> RunRecord:
    """One verify run in its own process, started `start` (warm or cold); crashes and timeouts
    come back as failed records."""
    warm = spec.framework if start == "warm" else None
    return run_record(spawn_child(verify_run, spec, run_environment(spec), timeout_s, warm=warm))


def run_record(outcome: ChildOutcome) -> RunRecord:
    """The `RunRecord` of a verify run's child process (a crash or timeout: a failed one)."""
    if outcome.result is None:
        return RunRecord(outcome.status, error=outcome.error)
    data = outcome.result
    return RunRecord(
        status=data["status"],
        losses=data.get("losses", []),
        weights=data.get("weights"),
        weights_hash=data.get("weights_hash"),
        nondeterministic_ops=data.get("nondeterministic_ops", []),
        error=data.get("error"),
        environment=data.get("environment") or {},
        wall_s=data.get("wall_s"),
    )


def verify(
    spec: VerifySpec,
    on_run: Callable[[Mode, int, RunRecord], None] | None = None,
    launch: Callable[[TrialSpec, float | None], RunRecord] | None = None,
) -> VerifyReport:
    """Run the workload `spec.runs` times per mode (modes interleaved) and compare bitwise;
    `launch(trial, timeout_s)` runs one (default: `launch_run`, started as `spec.trial_start`)."""
    from dataclasses import replace
    from functools import partial

    launch = launch or partial(launch_run, start=spec.trial_start)
    records: dict[str, list[RunRecord]] = {m.name: [] for m in spec.modes}
    for run in range(spec.runs):
        for mode in spec.modes:
            record = launch(replace(spec.trial, mode=mode, repeat=run), spec.timeout_s)
            records[mode.name].append(record)
            if on_run:
                on_run(mode, run, record)
    verdicts = {name: compare_runs(name, runs) for name, runs in records.items()}
    return VerifyReport(
        verdicts, spec.trial.device_label, spec.trial.workload, spec.trial.framework
    )
