"""TensorFlow workloads and adapter on the CPU.

Nothing here imports TensorFlow into the pytest process (TF and torch's triton crash when loaded
in one process): the checks that need TF run once in a child, tests/workloads/tf_probe.py.
"""

import importlib.util
from pathlib import Path

import pytest
from conftest import run_probe

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import MODES, parse_modes, same_as_default
from nnr_profile.profiler.runner.sweep import SweepSpec, plan_sweep
from nnr_profile.workloads.registry import get_workload, load_workloads
from nnr_profile.workloads.tf import knobs as tf_knobs

STUDY_TF = [
    "resnet50",
    "resnet101",
    "resnet152",
    "inception_v3",
    "xception",
    "densenet121",
    "densenet169",
    "densenet201",
    "mobilenet",
    "mobilenet_v2",
    "vgg16",
    "vgg19",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
]
TWINS = [
    "smallcnn",
    "mediumcnn",
    "mediumcnn_3x3",
    "resnet18_cifar",
    "resnet18_celeba",
    "resnet18_imagenet",
    "lenet",
    "mlp",
    "embedding_lm",
    "calibrate",
]
needs_tf = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)


@pytest.fixture(scope="module")
def probe() -> dict:
    """What workloads/tf_probe.py measured in a child process (one TF import)."""
    return run_probe(Path(__file__).parent / "tf_probe.py")


def test_every_study_model_is_registered_for_tf():
    registry = load_workloads()
    missing = [n for n in [*STUDY_TF, *TWINS, "keras_mnist_cnn"] if ("tf", n) not in registry]
    assert missing == []
    assert get_workload("tf", "resnet50").input_shape == (224, 224, 3)
    assert get_workload("tf", "inception_v3").input_shape == (299, 299, 3)
    assert get_workload("tf", "keras_mnist_cnn").optimizer == "adadelta"


@pytest.mark.parametrize("name", TWINS)
def test_small_models_mirror_their_torch_twins(name):
    torch_twin, tf_twin = get_workload("torch", name), get_workload("tf", name)
    assert tf_twin.params == torch_twin.params
    assert tf_twin.num_classes == torch_twin.num_classes
    assert tf_twin.input_kind == torch_twin.input_kind
    assert tf_twin.applies_knobs == torch_twin.applies_knobs
    assert (tf_twin.optimizer, tf_twin.learning_rate) == (
        torch_twin.optimizer,
        torch_twin.learning_rate,
    )
    assert tf_twin.recipe == torch_twin.recipe
    assert tf_twin.layout == torch_twin.layout
    assert tf_twin.input_shape == (*torch_twin.input_shape[1:], torch_twin.input_shape[0]) or (
        tf_twin.input_kind != "image"
    )


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("mediumcnn", {"kernel": 4}, "kernel must be one of 1, 3, 5, 7"),
        ("mlp", {"norm": "group"}, "norm must be one of none, batch, layer"),
        ("mlp", {"dropout": 1.5}, "dropout must be a finite number of at least 0 and below 1"),
        ("lenet", {"conv_dropout": "abc"}, "conv_dropout must be a finite number"),
        ("embedding_lm", {"heads": 3}, r"heads must divide d_model \(128\), not 3"),
        ("calibrate", {"overhead": -0.1}, "overhead must be a finite number of at least 0"),
        ("calibrate", {"layers": 0}, "layers must be a whole number of at least 1, not 0"),
    ],
)
def test_twins_reject_the_same_arguments(name, bad, message):
    for framework in ("torch", "tf"):
        with pytest.raises(UsageError, match=message):
            get_workload(framework, name).validate(bad, None)


def test_tf_image_sizes_are_height_width_channels():
    assert get_workload("tf", "resnet50").shape_for(32) == (32, 32, 3)
    with pytest.raises(UsageError, match="at least 75"):
        get_workload("tf", "inception_v3").validate({}, 32)


def test_fast_is_not_planned_for_tf_but_is_for_torch():
    assert same_as_default(MODES["fast"], "tf") and not same_as_default(MODES["fast"], "torch")
    assert not same_as_default(MODES["deterministic"], "tf")
    spec = SweepSpec(
        workloads=(("torch", "mlp"), ("tf", "mlp")),
        modes=tuple(parse_modes("default,fast,deterministic")),
        repeats=1,
    )
    planned = {(c.framework, c.mode.name) for cells in plan_sweep(spec).values() for c in cells}
    assert planned == {
        ("torch", "default"),
        ("torch", "fast"),
        ("torch", "deterministic"),
        ("tf", "default"),
        ("tf", "deterministic"),
    }


@needs_tf
def test_tf_environment_variables_only_where_tf_lacks_enable_op_determinism(monkeypatch):
    assert tf_knobs.tf_has_op_determinism()  # the TF installed here is >= 2.8
    deterministic = MODES["deterministic"]
    assert tf_knobs.mode_environment(deterministic) == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    monkeypatch.setattr(tf_knobs, "tf_has_op_determinism", lambda: False)
    env = tf_knobs.mode_environment(deterministic)
    assert env["TF_DETERMINISTIC_OPS"] == env["TF_CUDNN_DETERMINISTIC"] == "1"
    assert tf_knobs.mode_environment(MODES["default"]) == {}


@needs_tf
@pytest.mark.slow
def test_small_tf_workloads_train_one_step_on_the_cpu(probe):
    assert probe["missing_applications"] == []
    bad = [s for s in probe["steps"] if not (s["finite"] and s["changed"])]
    assert bad == []
    assert len(probe["steps"]) == 10


@needs_tf
@pytest.mark.slow
def test_efficientnet_b3_b5_b6_train_one_step_at_a_tiny_size(probe):
    assert [s["name"] for s in probe["new_models"]] == [
        "efficientnet_b3",
        "efficientnet_b5",
        "efficientnet_b6",
    ]
    assert all(s["finite"] and s["changed"] for s in probe["new_models"]), probe["new_models"]


@needs_tf
@pytest.mark.slow
def test_keras_only_models_have_the_parameter_count_of_their_timm_twins(probe):
    from test_torch_workloads import KERAS_TRAINABLE

    assert probe["trainable"] == KERAS_TRAINABLE


@needs_tf
@pytest.mark.slow
def test_calibrate_modes_differ_only_by_the_work_sized_after_warm_up(probe):
    default, deterministic = probe["calibrate"]["default"], probe["calibrate"]["deterministic"]
    assert default["status"] == deterministic["status"] == "ok", default["error"]
    assert default["dense"] == deterministic["dense"] == 2
    assert default["weights"] == deterministic["weights"] == 4  # the injector adds no weights
    assert default["losses"] == deterministic["losses"]
    assert default["hash"] == deterministic["hash"]
    assert default["injected"]["units"] == 0 and default["injected"]["sized_pct"] == 50
    sized = deterministic["injected"]
    assert sized["target_pct"] == 50 and sized["units"] > 0
    assert 0.25 < sized["units"] * sized["unit_ms"] / sized["step_ms"] < 1.0


@needs_tf
@pytest.mark.slow
def test_same_seed_same_mode_gives_identical_losses_and_weights(probe):
    runs = probe["repeats"]
    assert runs["status"] == ["ok"] * 3, runs["errors"]
    assert runs["losses"][0] == runs["losses"][1]
    assert runs["hashes"][0] == runs["hashes"][1] != runs["hashes"][2]
    assert len(runs["times_ms"]) == 3 and all(t > 0 for t in runs["times_ms"])


@needs_tf
@pytest.mark.slow
def test_environment_names_tf_its_build_and_the_gpus_it_sees(probe):
    info = probe["environment"]
    assert info["tensorflow"] == probe["tf_version"] and info["keras"] == probe["keras_version"]
    assert "is_cuda_build" in info["build_info"]
    assert info["gpus_visible"] == probe["gpus"]


@needs_tf
@pytest.mark.slow
def test_a_gpu_session_where_tf_sees_no_gpu_is_refused_with_an_install_hint(probe):
    if probe["gpus"]:
        pytest.skip("TensorFlow sees a GPU here")
    assert "TensorFlow sees no GPU" in probe["gpu_refusal"]
    assert "pip install" in probe["gpu_refusal"]
