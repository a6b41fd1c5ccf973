import os
import subprocess
import sys

import pytest
from conftest import cli_env, plugin_distribution

from nnr_profile.core.errors import ParameterError, UsageError
from nnr_profile.workloads.registry import (
    Arg,
    Workload,
    get_workload,
    load_workloads,
    parse_workload_args,
)
from nnr_profile.workloads.selection import select_workloads

STUDY_TORCH = [
    "resnet18_cifar",
    "resnet18_celeba",
    "resnet18_imagenet",
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
    with pytest.raises(UsageError, match="kernel must be one of 1, 3, 5, 7"):
        get_workload("torch", "mediumcnn").validate({"kernel": 4}, None)


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


@pytest.mark.parametrize(
    ("framework", "name", "bad", "fragment"),
    [
        ("torch", "calibrate", {"overhead": "abc"}, "overhead must be a finite number"),
        ("tf", "calibrate", {"overhead": float("nan")}, "of at least 0, not nan"),
        ("torch", "calibrate", {"overhead": float("inf")}, "of at least 0, not inf"),
        ("torch", "calibrate", {"layers": 0}, "layers must be a whole number of at least 1"),
        ("torch", "calibrate", {"layers": 2.5}, "layers must be a whole number"),
        ("torch", "mlp", {"dropout": 1.5}, "at least 0 and below 1, not 1.5"),
        ("tf", "lenet", {"dropout": 1.0}, "below 1, not 1.0"),
        ("torch", "embedding_lm", {"heads": 3}, "heads must divide d_model"),
        ("torch", "embedding_lm", {"heads": 0}, "heads must be a whole number of at least 1"),
        ("torch", "smallcnn", {"bn": "maybe"}, "bn must be true or false"),
        ("torch", "inception_v3", {"aux_logits": 2}, "aux_logits must be true or false"),
    ],
)
def test_each_argument_has_a_type_and_range(framework, name, bad, fragment):
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(")) as info:
        get_workload(framework, name).validate(bad, None)
    assert f"argument {next(iter(bad))}" in str(info.value)


def test_arguments_come_back_in_their_declared_types():
    args = get_workload("torch", "calibrate").validate({"overhead": "1", "layers": "3.0"}, None)
    assert args == {"overhead": 1.0, "layers": 3}
    assert type(args["overhead"]) is float and type(args["layers"]) is int
    assert get_workload("tf", "smallcnn").validate({"bn": "yes"}, None) == {"bn": True}


def test_a_plugins_params_are_typed_by_their_defaults():
    workload = Workload(
        "torch", "plugin", lambda ctx: None, (4,), params={"width": 8, "act": "relu"}
    )
    assert workload.validate({"width": "16"}, None) == {"width": 16, "act": "relu"}
    with pytest.raises(UsageError, match="width must be a whole number, not 'wide'"):
        workload.validate({"width": "wide"}, None)
    with pytest.raises(ValueError, match="default"):
        Arg("rate", float, 2.0, max=1)


def test_image_size_errors_name_the_parameter():
    with pytest.raises(ParameterError, match="image_size must be at least 64") as info:
        get_workload("torch", "mediumcnn").validate({}, 32)
    assert info.value.param == "image_size"


def test_a_model_named_twice_is_selected_once_with_a_note():
    selection = select_workloads("smallcnn,smallcnn,mlp", "torch")
    assert selection.workloads == (("torch", "smallcnn"), ("torch", "mlp"))
    assert selection.notes == ["model smallcnn named more than once: each runs once"]


def test_a_broken_plugin_is_named_and_the_other_workloads_still_load(tmp_path):
    modules = {"broken_plugin": "import a_dependency_that_is_not_installed\n"}
    entry_points = "[nnr_profile.workloads]\nbroken = broken_plugin\n"
    plugin_distribution(tmp_path, "broken-plugin", modules, entry_points)
    env = cli_env(plugins=True)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    proc = subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch/resnet50" in proc.stdout and "torch/hangs" in proc.stdout
    assert "workload plugin 'broken': broken_plugin failed to import" in proc.stdout
    assert "a_dependency_that_is_not_installed" in proc.stdout
