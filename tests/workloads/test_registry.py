import subprocess
import sys

import pytest
from conftest import cli_env

from nnr_profile.core.errors import UsageError
from nnr_profile.workloads.registry import get_workload, load_workloads, parse_workload_args
from nnr_profile.workloads.selection import select_workloads

STUDY_TORCH = [
    "resnet18",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg16",
    "vgg19",
    "densenet121",
    "densenet169",
    "densenet201",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b4",
    "efficientnet_b7",
    "inception_v3",
    "vit_b_16",
    "smallcnn",
    "mediumcnn",
    "lenet",
    "mlp",
    "embedding_lm",
    "calibrate",
]


def test_every_study_model_is_registered_for_torch():
    registry = load_workloads()
    missing = [name for name in STUDY_TORCH if ("torch", name) not in registry]
    assert missing == []


def test_unknown_model_lists_close_names():
    with pytest.raises(UsageError, match="did you mean resnet50"):
        get_workload("torch", "resnet5O")


def test_workload_args_are_typed_and_checked():
    assert parse_workload_args(["overhead=0.2", "kernel=5", "bn=true", "norm=layer"]) == {
        "overhead": 0.2,
        "kernel": 5,
        "bn": True,
        "norm": "layer",
    }
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_workload_args(["overhead"])
    with pytest.raises(UsageError, match=r"has no argument depth.*kernel"):
        get_workload("torch", "mediumcnn").validate({"depth": 3}, None)
    with pytest.raises(UsageError, match="kernel must be 1, 3, 5 or 7"):
        get_workload("torch", "mediumcnn").validate({"kernel": 4}, None)
    with pytest.raises(UsageError, match="whole non-negative number of layers"):
        get_workload("torch", "calibrate").validate({"overhead": 0.33}, None)


def test_image_size_limits_are_checked_before_a_trial():
    with pytest.raises(UsageError, match="at least 64"):
        get_workload("torch", "mediumcnn").validate({}, 32)
    with pytest.raises(UsageError, match="aux_logits=false"):
        get_workload("torch", "inception_v3").validate({}, 96)
    assert get_workload("torch", "inception_v3").validate({"aux_logits": False}, 96)


def test_entry_point_plugins_are_loaded():
    code = (
        "from nnr_profile.workloads.registry import load_workloads;"
        "print(('torch', 'hangs') in load_workloads())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_env(plugins=True),
        check=True,
    )
    assert out.stdout.strip() == "True"


def test_the_studys_keras_spellings_name_the_shared_workloads():
    assert get_workload("tf", "inceptionv3").name == "inception_v3"
    assert get_workload("torch", "efficientnetb4").name == "efficientnet_b4"
    assert select_workloads("inceptionv3,mobilenetv2", "torch").workloads == (
        ("torch", "inception_v3"),
        ("torch", "mobilenet_v2"),
    )
