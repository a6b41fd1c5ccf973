"""`nnr-profile describe`: the layer table, counts, MACs and recipe; bad input is one line."""

import importlib.util
import json

import pytest
from conftest import assert_one_line_usage_error, run_cli

KEYS = {
    "framework",
    "workload",
    "input_shape",
    "num_classes",
    "trainable_params",
    "non_trainable_params",
    "macs_per_example",
    "recipe",
    "layout",
    "layers",
}


def test_describe_prints_the_study_smallcnn_in_torch():
    proc = run_cli("describe", "--model", "smallcnn")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "smallcnn (torch, study layout)" in out
    assert out.count("MaxPool2d") == 3
    assert "trainable params:      15,722" in out
    assert "MACs per example:      2,213,184" in out
    assert "adam lr 0.0004" in out and "categorical_crossentropy on softmax" in out


def test_describe_json_has_the_fields_and_follows_image_size_and_arguments():
    proc = run_cli(
        "describe",
        "--model",
        "resnet18",
        "--image-size",
        "32",
        "--workload-arg",
        "classes=100",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= KEYS
    assert data["workload"] == "resnet18_cifar" and data["framework"] == "torch"
    assert data["input_shape"] == [3, 32, 32] and data["num_classes"] == 100
    assert data["trainable_params"] == 11_220_132 and data["non_trainable_params"] == 9_600
    assert data["recipe"]["optimizer"] == "adam" and data["recipe"]["loss"] == (
        "categorical_crossentropy"
    )
    assert sum(row["macs"] for row in data["layers"]) == data["macs_per_example"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--model", "nosuchnet"), "unknown model 'nosuchnet'"),
        (("--model", "smallcnn", "--framework", "mxnet"), "'mxnet' is not known"),
        (("--model", "smallcnn", "--workload-arg", "depth=3"), "has no argument depth"),
        (("--model", "mediumcnn", "--image-size", "8"), "at least 64"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    assert_one_line_usage_error(run_cli("describe", *args), fragment)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)
def test_framework_all_lists_every_twin_with_equal_counts():
    proc = run_cli("describe", "--model", "smallcnn", "--framework", "all", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    jax = ["jax"] if importlib.util.find_spec("flax") is not None else []
    assert [d["framework"] for d in data] == [*jax, "tf", "torch"]
    assert all(set(d) >= KEYS for d in data)
    *channels_last, torch_twin = data
    for twin in channels_last:
        for key in ("trainable_params", "non_trainable_params", "macs_per_example", "recipe"):
            assert twin[key] == torch_twin[key], (twin["framework"], key)
        assert twin["input_shape"] == [32, 32, 3]
    assert torch_twin["input_shape"] == [3, 32, 32]


def test_a_preset_gives_its_model_arguments_and_recipe_and_options_override_it():
    proc = run_cli("describe", "--preset", "study-resnet18-cifar100", "--framework", "torch")
    assert proc.returncode == 0, proc.stderr
    assert "resnet18_cifar (torch, study layout) with classes=100" in proc.stdout
    assert "classes:               100" in proc.stdout
    assert "adam lr 0.0004" in proc.stdout and "200 epochs" in proc.stdout
    sized = {}
    for extra in ((), ("--image-size", "40")):
        proc = run_cli(
            "describe", "--preset", "study", "--model", "smallcnn", "--framework", "torch",
            "--json", *extra,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["workload"] == "smallcnn" and data["recipe"]["batch_size"] == 128
        sized[extra] = data["input_shape"]
    assert sized == {(): [3, 224, 224], ("--image-size", "40"): [3, 40, 40]}


def test_an_unknown_preset_is_one_line_and_exit_2():
    assert_one_line_usage_error(
        run_cli("describe", "--preset", "nosuch"), "unknown preset 'nosuch'"
    )


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)
def test_a_variability_preset_describes_its_framework():
    proc = run_cli("describe", "--preset", "study-smallcnn-cifar10", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["framework"], data["workload"], data["input_shape"]) == (
        "tf",
        "smallcnn",
        [32, 32, 3],
    )
    assert data["recipe"]["preprocessing"] == "scale_255"
