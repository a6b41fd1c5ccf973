"""One spec, the same knobs through every runner (trial, replica, grad-SNR, verify).

Each runner runs here, in this process, on a tiny real workload; afterwards the process's real
PyTorch state shows which knobs it applied. A workload that sets no knob by design must leave
them off in every runner, a normal one must turn them on in every runner. The mode's
environment is the child's process environment (`child_environment`), set once before the
child starts: no in-process runner touches it.
"""

import os

import pytest
import torch

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.profiler.runner.child import child_environment
from nnr_profile.profiler.runner.process import spawn_trial
from nnr_profile.profiler.runner.trial import prepare_run, run_trial
from nnr_profile.studies.grad_snr import GradSnrSpec, measure, plan_runs
from nnr_profile.studies.replica import ReplicaSpec, run_replica
from nnr_profile.studies.verify import run_once
from nnr_profile.workloads import register_workload

DETERMINISTIC = MODES["deterministic"]


@register_workload(
    "torch",
    "test_sets_no_knobs",
    input_shape=(64,),
    num_classes=10,
    input_kind="features",
    applies_knobs=False,
)
def _build_no_knobs(ctx):
    """A linear model whose modes must not differ by any knob (like calibrate)."""
    from torch import nn

    return nn.Linear(ctx.input_shape[0], ctx.num_classes)


@pytest.fixture
def fresh_torch_state():
    """Knobs off and the environment as it was, before and after the test."""
    saved = dict(os.environ)
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    yield
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    os.environ.clear()
    os.environ.update(saved)


def _knobs_now() -> dict:
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn.deterministic": torch.backends.cudnn.deterministic,
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def _reset() -> None:
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


def _run_each(workload: str) -> dict[str, dict]:
    """The knobs each runner left set after running `workload` in deterministic mode."""
    trial = TrialSpec("torch", workload, DETERMINISTIC, batch_size=4, warmup=0, iterations=1)
    replica = ReplicaSpec("torch", workload, "digits", "control", 0, 0, 1, DETERMINISTIC)
    snr = GradSnrSpec(workload, modes=(DETERMINISTIC,), batches=2, batch_size=8, epochs=0)
    runners = {  # each returns its error (None when it ran)
        "trial": lambda: run_trial(trial).error,
        "verify": lambda: run_once(trial)[0].error,
        "replica": lambda: run_replica(replica).error,
        "grad_snr": lambda: None if measure(snr, plan_runs(snr)[0])[0] else "no rows",
    }
    seen = {}
    for name, run in runners.items():
        _reset()
        error = run()
        assert error is None, f"{name}: {error}"
        seen[name] = _knobs_now()
    return seen


@pytest.mark.usefixtures("fresh_torch_state")
def test_a_workload_without_knobs_gets_none_from_any_runner():
    seen = _run_each("test_sets_no_knobs")
    off = {"deterministic_algorithms": False, "cudnn.deterministic": False}
    for name, knobs in seen.items():
        assert knobs == {**off, "CUBLAS_WORKSPACE_CONFIG": None}, name
    env = child_environment("torch", "test_sets_no_knobs", DETERMINISTIC, None, 0, base={})
    assert "CUBLAS_WORKSPACE_CONFIG" not in env


@pytest.mark.usefixtures("fresh_torch_state")
def test_a_normal_workload_gets_the_modes_knobs_from_every_runner():
    seen = _run_each("mlp")
    for name, knobs in seen.items():
        assert knobs["deterministic_algorithms"] and knobs["cudnn.deterministic"], name
        assert knobs["CUBLAS_WORKSPACE_CONFIG"] is None, f"{name} set the environment itself"
    env = child_environment("torch", "mlp", DETERMINISTIC, None, 0, base={})
    assert env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


@pytest.mark.usefixtures("fresh_torch_state")
def test_a_child_starts_with_the_modes_environment_and_records_it():
    trial = TrialSpec("torch", "mlp", DETERMINISTIC, batch_size=4, warmup=0, iterations=1)
    result = spawn_trial(trial, timeout_s=120)
    assert result.status == STATUS_OK, result.error
    assert result.knobs_applied["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert result.knobs_applied["deterministic_algorithms"] is True
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ  # the parent's own stays as it was


@pytest.mark.usefixtures("fresh_torch_state")
def test_prepare_run_records_the_same_knobs_for_a_trial_and_a_replica_spec():
    trial = TrialSpec("torch", "test_sets_no_knobs", DETERMINISTIC)
    replica = ReplicaSpec(
        "torch", "test_sets_no_knobs", "digits", "control", 0, 0, 1, DETERMINISTIC
    )
    first = prepare_run(trial).knobs_applied
    _reset()
    assert prepare_run(replica, seed=0).knobs_applied == first
    assert first["none"] == "test_sets_no_knobs sets no determinism knob by design"
    assert set(first) == {"none", "recipe"}


def test_a_trial_records_the_recipe_it_ran():
    from nnr_profile.workloads.registry import get_workload

    spec = TrialSpec("torch", "lenet", MODES["default"], iterations=1, batch_size=2)
    recipe = prepare_run(spec).knobs_applied["recipe"]
    assert recipe == get_workload("torch", "lenet").recipe_record()
    assert recipe["optimizer"] == "sgd"
