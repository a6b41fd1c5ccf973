import importlib.util
import math
import sys

import pytest
import torch
from conftest import run_cli

from nnr_profile.core.errors import MissingDependencyError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.profiler.runner.trial import run_trial
from nnr_profile.workloads.adapter import get_adapter
from nnr_profile.workloads.registry import BuildContext, Workload, get_workload, load_workloads
from nnr_profile.workloads.torch.timm_models import import_timm

TORCH_WORKLOADS = sorted(n for (f, n) in load_workloads() if f == "torch")
HAS_TIMM = importlib.util.find_spec("timm") is not None
needs_timm = pytest.mark.skipif(not HAS_TIMM, reason="timm is not installed (nnr-profile[timm])")
KERAS_TRAINABLE = {"xception": 22_855_952, "mobilenet": 4_231_976}
"""Trainable parameters of keras.applications.Xception / MobileNet (1000 classes, no top
weights): the timm builds must be the same architectures."""


def _tiny_side(workload):
    if workload.name == "inception_v3":
        return 299
    return max(32, workload.min_image_size)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCH_WORKLOADS)
def test_every_torch_workload_trains_one_step_on_the_cpu(name):
    workload = load_workloads()[("torch", name)]
    if workload.missing_requirements():
        pytest.skip(f"{name} needs {', '.join(workload.missing_requirements())}")
    adapter = get_adapter("torch")
    adapter.seed(0)
    side = _tiny_side(workload)
    args = workload.validate({}, side if workload.input_kind == "image" else None)
    session = adapter.prepare(workload, args, MODES["default"], 2, workload.shape_for(side), "cpu")
    before = session.weights_hash()
    loss = session.loss_value(session.step())
    assert math.isfinite(loss)
    assert session.weights_hash() != before


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


def _tiny_forward(name: str) -> tuple[torch.Tensor, int]:
    """Build `name` with 10 classes at 32x32 and run one eval forward: (logits, parameters)."""
    workload = get_workload("torch", name)
    args = workload.validate({}, 32)
    torch.manual_seed(0)
    model = workload.builder(BuildContext(args, "default", workload.shape_for(32), 10)).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 32, 32))
    return logits, sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["efficientnet_b3", "efficientnet_b5", "efficientnet_b6"])
def test_the_missing_efficientnets_build_at_a_tiny_size(name):
    logits, params = _tiny_forward(name)
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()
    assert params > 10_000_000
    assert get_workload("torch", name.replace("_", "")).name == name  # the Keras spelling


@needs_timm
@pytest.mark.parametrize("name", ["xception", "mobilenet"])
def test_timm_builds_the_keras_only_models_with_the_same_parameter_count(name):
    logits, _ = _tiny_forward(name)
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()
    workload = get_workload("torch", name)
    model = workload.builder(BuildContext({}, "default", workload.input_shape, 1000))
    assert sum(p.numel() for p in model.parameters()) == KERAS_TRAINABLE[name]


def test_a_missing_timm_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'nnr-profile\[timm\]'"):
        import_timm()
    workload = get_workload("torch", "xception")
    assert workload.requires == ("timm",) and "nnr-profile[timm]" in workload.install_hint
    absent = Workload(
        "torch", "needs_absent", workload.builder, (3, 8, 8), requires=("nnr_no_such_module",)
    )
    with pytest.raises(MissingDependencyError, match=r"needs nnr_no_such_module.*pip install"):
        absent.validate({}, None)


def test_list_says_which_models_need_timm():
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if "/" in line}
    assert "needs timm" in lines["torch/xception"] and "needs timm" in lines["torch/mobilenet"]
    assert "needs" not in lines["tf/xception"] and "needs" not in lines["torch/efficientnet_b6"]
    assert ("not installed" in lines["torch/xception"]) == (not HAS_TIMM)
