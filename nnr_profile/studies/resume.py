"""`verify --resume-at N`: does a run resumed from a checkpoint match an uninterrupted one?

Per mode, three processes (PyTorch): `straight` trains T iterations without a break; `first`
trains N and writes a checkpoint of every piece of training state (PIECES); `resume` starts
fresh, restores the pieces asked for (all by default) and trains iterations N..T-1. The
resumed losses and final weights are compared bitwise with the straight run's. Each
iteration draws its batch from a seeded data generator, so the data position is state too.

When the resumed run differs, the pieces whose live state after restoring differs from the
checkpoint are the candidates; each is then restored in turn, on top of what was restored, in
a further resumed run: a piece whose restoring makes the run match is the state that was not
restored. When the runs differ before the checkpoint, training is not reproducible at all and
resuming is not to blame (plain `verify` shows where).
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.profiler.runner.child import child_task, spawn_child
from nnr_profile.studies.locate import prepare_session
from nnr_profile.studies.verify import VerifySpec, run_environment

PIECES = ("model", "optimizer", "rng_torch", "rng_cuda", "rng_numpy", "rng_python", "data")
"""Training state a checkpoint holds, in the order they are restored and named."""
DATA_SEED_OFFSET = 7919
"""The data generator's seed is the trial seed plus this (independent of the init seed)."""


def parse_restore(text: str | None) -> tuple[str, ...]:
    """'all' (or None) -> every piece; else the comma-separated PIECES named."""
    if text is None or text.strip().lower() == "all":
        return PIECES
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in PIECES]
    if unknown or not names:
        raise ParameterError(
            "restore",
            "{value!r}: use all, or some of {choices} (comma-separated)",
            value=text,
            choices=", ".join(PIECES),
        )
    return tuple(p for p in PIECES if p in names)


@dataclass(frozen=True)
class ResumeSpec:
    """What to check: the verify spec (modes, iterations T, seed...), N and what is restored."""

    verify: VerifySpec
    resume_at: int
    restore: tuple[str, ...] = PIECES

    def __post_init__(self) -> None:
        if self.verify.trial.framework != "torch":
            raise ParameterError(
                "framework",
                "{value}: {resume_at} checks PyTorch workloads (TensorFlow checkpoints are not "
                "covered yet); use torch",
                value=self.verify.trial.framework,
            )
        if not 1 <= self.resume_at < self.verify.trial.iterations:
            raise ParameterError(
                "resume_at",
                "{value} must lie inside the run: between 1 and {iterations} - 1 ({most})",
                value=self.resume_at,
                most=self.verify.trial.iterations - 1,
            )


@dataclass
class ResumeVerdict:
    """Per mode: whether the resumed run matched, where it parted, and what was not restored.

    `first_divergent_iteration` counts from the start of training (N or later when the
    resumed part differs; T when only the final weights differ). `pieces` maps each piece
    to {"restored": bool, "equal_after_restore": bool | None}. `not_restored` names the
    pieces whose restoring, in turn, made the resumed run match.
    """

    mode: str
    matches: bool
    resume_at: int
    iterations: int
    restored: list[str]
    first_divergent_iteration: int | None = None
    weights_equal: bool | None = None
    equal_before_checkpoint: bool | None = None
    pieces: dict[str, dict[str, bool | None]] = field(default_factory=dict)
    not_restored: list[str] = field(default_factory=list)
    explanation: str = ""
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (keys as in the dataclass, without `mode`)."""
        data = dict(self.__dict__)
        data.pop("mode")
        return data


class DataStream:
    """Synthetic batches drawn per iteration from a seeded generator (its state: the position)."""

    def __init__(self, session: Any, spec: TrialSpec) -> None:
        import torch

        from nnr_profile.workloads.registry import get_workload

        self.session = session
        self.workload = get_workload(spec.framework, spec.workload)
        self.shape = (spec.batch_size, *self.workload.shape_for(spec.image_size))
        self.generator = torch.Generator().manual_seed(spec.seed + DATA_SEED_OFFSET)

    def next_batch(self) -> None:
        """Put the next batch into the session."""
        import torch

        classes = self.workload.num_classes
        if self.workload.input_kind == "tokens":
            inputs = torch.randint(0, classes, self.shape, generator=self.generator)
            targets = torch.randint(0, classes, self.shape, generator=self.generator)
        else:
            inputs = torch.randn(self.shape, generator=self.generator)
            targets = torch.randint(0, classes, self.shape[:1], generator=self.generator)
        self.session.inputs = inputs.to(self.session.device)
        self.session.targets = targets.to(self.session.device)


def capture_state(session: Any, data: DataStream) -> dict[str, Any]:
    """Every piece of training state, as the checkpoint holds it."""
    import torch

    return {
        "model": session.model.state_dict(),
        "optimizer": session.optimizer.state_dict(),
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "rng_numpy": np.random.get_state(),
        "rng_python": random.getstate(),
        "data": data.generator.get_state(),
    }


def restore_state(session: Any, data: DataStream, state: dict[str, Any], pieces: Sequence[str]):
    """Load `pieces` of `state` into the live session, data stream and RNGs."""
    import torch

    loaders: dict[str, Callable[[Any], Any]] = {
        "model": session.model.load_state_dict,
        "optimizer": session.optimizer.load_state_dict,
        "rng_torch": torch.set_rng_state,
        "rng_cuda": lambda s: s is not None and torch.cuda.set_rng_state_all(s),
        "rng_numpy": np.random.set_state,
        "rng_python": random.setstate,
        "data": data.generator.set_state,
    }
    for piece in pieces:
        loaders[piece](state[piece])


def fingerprint(value: Any) -> str:
    """SHA-256 of a piece of state (tensors by raw bytes, containers walked, the rest by repr)."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()[:24]


def _feed(digest: Any, value: Any) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"A{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(f"K{key!r}".encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(repr(value).encode())


@child_task()
def run_role(payload: dict[str, Any]) -> dict[str, Any]:
    """One process of the check: straight, first (writes the checkpoint) or resume."""
    import torch

    spec = TrialSpec.from_dict(payload["trial"])
    role, at = payload["role"], int(payload["resume_at"])
    checkpoint = Path(payload["checkpoint"])
    result: dict[str, Any] = {"status": STATUS_OK, "role": role}
    session, _ = prepare_session(spec)
    data = DataStream(session, spec)
    start, stop = 0, spec.iterations
    if role == "resume":
        state = torch.load(checkpoint, weights_only=False)
        restore_state(session, data, state, payload["restore"])
        live = capture_state(session, data)
        result["equal_after_restore"] = {
            p: fingerprint(live[p]) == fingerprint(state[p]) for p in PIECES
        }
        start = at
    elif role == "first":
        stop = at
    losses = []
    for index in range(start, stop):
        data.next_batch()
        losses.append(session.loss_value(session.step()))
        if index + 1 == at and role in ("straight", "first"):
            state = capture_state(session, data)
            result["fingerprints_at"] = {p: fingerprint(state[p]) for p in PIECES}
            if role == "first":
                torch.save(state, checkpoint)
    session.sync()
    result["losses"] = losses
    result["weights_hash"] = session.weights_hash()
    return result


def launch_role(
    trial: TrialSpec,
    role: str,
    resume_at: int,
    checkpoint: Path,
    restore: Sequence[str] = PIECES,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """One process of the check; a crash or timeout comes back as a failed result."""
    payload = {
        "trial": trial.to_dict(),
        "role": role,
        "resume_at": resume_at,
        "checkpoint": str(checkpoint),
        "restore": list(restore),
    }
    outcome = spawn_child(run_role, payload, run_environment(trial), timeout_s)
    if outcome.result is None:
        return {"status": outcome.status, "error": outcome.error, "losses": []}
    return outcome.result


def _bits(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.uint64)


def _parted(straight: dict[str, Any], resumed: dict[str, Any], at: int) -> tuple[int | None, bool]:
    """(first differing iteration counted from 0, or None; whether final weights are equal)."""
    a, b = _bits(straight["losses"][at:]), _bits(resumed["losses"])
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    weights_equal = straight.get("weights_hash") == resumed.get("weights_hash")
    if differ.size:
        return at + int(differ[0]), weights_equal
    if len(a) != len(b) or not weights_equal:
        return at + n, weights_equal
    return None, weights_equal


def check_mode(
    spec: ResumeSpec, trial: TrialSpec, on_note: Callable[[str], None] | None = None
) -> ResumeVerdict:
    """The resume check for one mode (3 processes, more when a difference is diagnosed)."""
    at, total = spec.resume_at, trial.iterations
    verdict = ResumeVerdict(trial.mode.name, False, at, total, list(spec.restore))
    timeout = spec.verify.timeout_s
    with tempfile.TemporaryDirectory(prefix="nnr-resume-") as tmp:
        checkpoint = Path(tmp) / "checkpoint.pt"
        straight = launch_role(trial, "straight", at, checkpoint, timeout_s=timeout)
        first = launch_role(trial, "first", at, checkpoint, timeout_s=timeout)
        failed = [r for r in (straight, first) if r["status"] != STATUS_OK]
        if failed:
            verdict.errors = [r.get("error") or r["status"] for r in failed]
            verdict.explanation = "a run failed before the resumed part could be compared"
            return verdict
        before = _bits(straight["losses"][:at]).tolist() == _bits(first["losses"]).tolist()
        verdict.equal_before_checkpoint = before and (
            straight.get("fingerprints_at") == first.get("fingerprints_at")
        )
        resumed = launch_role(trial, "resume", at, checkpoint, spec.restore, timeout)
        if resumed["status"] != STATUS_OK:
            verdict.errors = [resumed.get("error") or resumed["status"]]
            verdict.explanation = "the resumed run failed"
            return verdict
        verdict.first_divergent_iteration, verdict.weights_equal = _parted(straight, resumed, at)
        equal = resumed.get("equal_after_restore", {})
        verdict.pieces = {
            p: {"restored": p in spec.restore, "equal_after_restore": equal.get(p)} for p in PIECES
        }
        verdict.matches = verdict.first_divergent_iteration is None
        if verdict.matches:
            verdict.explanation = f"the run resumed at iteration {at} matches bit for bit"
            return verdict
        if not verdict.equal_before_checkpoint:
            verdict.explanation = (
                f"two uninterrupted runs already differ before iteration {at}: training is not "
                "reproducible in this mode, resuming is not to blame (see plain verify)"
            )
            return verdict
        _diagnose(spec, trial, verdict, checkpoint, straight, on_note)
    return verdict


def _diagnose(
    spec: ResumeSpec,
    trial: TrialSpec,
    verdict: ResumeVerdict,
    checkpoint: Path,
    straight: dict[str, Any],
    on_note: Callable[[str], None] | None,
) -> None:
    """Restore each differing piece in turn on top of the restored ones; name what fixes it."""
    at, timeout = spec.resume_at, spec.verify.timeout_s
    candidates = [p for p, facts in verdict.pieces.items() if facts["equal_after_restore"] is False]
    missing = [p for p in candidates if p not in spec.restore]

    def matches(pieces: Sequence[str]) -> bool:
        if on_note:
            on_note(f"  {trial.mode.name}: resuming again with {', '.join(pieces)} restored")
        result = launch_role(trial, "resume", at, checkpoint, pieces, timeout)
        return result["status"] == STATUS_OK and _parted(straight, result, at)[0] is None

    for piece in missing:
        if matches([p for p in PIECES if p in spec.restore or p == piece]):
            verdict.not_restored.append(piece)
    together = [p for p in PIECES if p in spec.restore or p in missing]
    if not verdict.not_restored and len(missing) > 1 and matches(together):
        verdict.not_restored = list(missing)
    wrong = [p for p in candidates if p in spec.restore]
    if verdict.not_restored:
        verdict.explanation = (
            f"state not restored: {', '.join(verdict.not_restored)} (restoring "
            f"{'it' if len(verdict.not_restored) == 1 else 'them'} as well makes the resumed "
            "run match bit for bit)"
        )
    elif wrong:
        verdict.explanation = (
            f"restoring {', '.join(wrong)} does not reproduce the checkpointed state bit for bit"
        )
    else:
        verdict.explanation = (
            "every piece of state equals the checkpoint after restoring, yet the run differs: "
            "state outside model, optimizer, RNGs and data position (a module attribute, a "
            "framework cache) or kernels that are not deterministic"
        )


def check_resume(
    spec: ResumeSpec, on_note: Callable[[str], None] | None = None
) -> dict[str, ResumeVerdict]:
    """The resume check for every mode of `spec.verify` (mode name -> verdict)."""
    verdicts = {}
    for mode in spec.verify.modes:
        trial = replace(spec.verify.trial, mode=mode, warmup=0)
        if on_note:
            on_note(f"  {mode.name}: straight, first {spec.resume_at}, resumed runs")
        verdicts[mode.name] = check_mode(spec, trial, on_note)
    return verdicts
