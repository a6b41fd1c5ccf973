import math

import pytest
import torch

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.runner.trial import run_trial
from nnr_profile.workloads.adapter import get_adapter
from nnr_profile.workloads.registry import load_workloads

TORCH_WORKLOADS = sorted(n for (f, n) in load_workloads() if f == "torch")


def _tiny_side(workload):
    if workload.name == "inception_v3":
        return 299
    return max(32, workload.min_image_size)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCH_WORKLOADS)
def test_every_torch_workload_trains_one_step_on_the_cpu(name):
    workload = load_workloads()[("torch", name)]
    adapter = get_adapter("torch")
    adapter.seed(0)
    side = _tiny_side(workload)
    args = workload.validate({}, side if workload.input_kind == "image" else None)
    session = adapter.prepare(workload, args, MODES["default"], 2, workload.shape_for(side), "cpu")
    before = session.weights_hash()
    loss = session.loss_value(session.step())
    assert math.isfinite(loss)
    assert session.weights_hash() != before


def test_calibrate_adds_the_injected_share_of_layers():
    workload = load_workloads()[("torch", "calibrate")]
    adapter = get_adapter("torch")
    args = workload.validate({"overhead": 0.25}, None)
    sizes = {}
    for mode in ("default", "deterministic"):
        session = adapter.prepare(workload, args, MODES[mode], 2, workload.input_shape, "cpu")
        sizes[mode] = sum(isinstance(m, torch.nn.Linear) for m in session.model.modules())
    assert sizes == {"default": 20, "deterministic": 25}


def test_same_seed_same_mode_gives_identical_losses_and_weights():
    spec = TrialSpec(
        "torch", "smallcnn", MODES["default"], batch_size=4, image_size=16, warmup=1, iterations=3
    )
    first, second = run_trial(spec), run_trial(spec)
    assert first.status == second.status == STATUS_OK
    assert first.losses == second.losses
    assert first.weights_hash == second.weights_hash
    assert len(first.times_ms) == 3 and all(t > 0 for t in first.times_ms)
    assert first.environment["framework"]["torch"] == torch.__version__


def test_a_trial_that_raises_comes_back_as_a_failed_value():
    spec = TrialSpec(
        "torch", "mediumcnn", MODES["default"], batch_size=2, image_size=8, warmup=0, iterations=1
    )
    result = run_trial(spec)
    assert result.status == "failed"
    assert "at least 64" in result.error
