"""Our models against the study's own code, and each PyTorch twin against its TensorFlow twin.

The study's model definitions are built from ../shared/reference by tests/workloads/
study_reference.py in a child process (study_probe.py: TF and torch are kept apart); the
tests skip cleanly without ../shared or TensorFlow. The PyTorch side is built here.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import cli_env, run_probe
from study_reference import skip_reason

from nnr_profile.workloads.describe import describe_one
from nnr_profile.workloads.registry import BuildContext, get_workload

HERE = Path(__file__).parent
needs_study = pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))

STUDY_TRAINABLE = {
    ("smallcnn", ()): 15_722,
    ("smallcnn", (("bn", True),)): 15_882,
    ("resnet18_cifar", ()): 11_173_962,
    ("resnet18_cifar", (("classes", 100),)): 11_220_132,
    ("resnet18_celeba", ()): 11_496_552,
    ("MediumCNN 1*1", ()): 690_664,
    ("MediumCNN 3*3", ()): 2_087_784,
    ("MediumCNN 5*5", ()): 4_882_024,
    ("MediumCNN 7*7", ()): 9_073_384,
    ("mediumcnn", (("kernel", 1),)): 690_664,
    ("mediumcnn", (("kernel", 3),)): 2_087_784,
    ("mediumcnn", (("kernel", 5),)): 4_882_024,
    ("mediumcnn", (("kernel", 7),)): 9_073_384,
}
"""Trainable parameters of every model the study defines, as its own code builds them
(checked against it by test_our_tf_models_are_the_studys_layer_for_layer)."""


def _key(name: str, args: dict) -> tuple[str, tuple]:
    return (name, tuple(sorted(args.items())))


def _torch_trainable(name: str, args: dict) -> int:
    workload = get_workload("torch", name)
    resolved = workload.validate(args, None)
    ctx = BuildContext(resolved, "default", workload.input_shape, workload.classes_for(resolved))
    return sum(p.numel() for p in workload.builder(ctx).parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def probe() -> dict:
    """What study_probe.py built in TensorFlow: the study's models, ours, our TF twins."""
    return run_probe(HERE / "study_probe.py")


@pytest.mark.parametrize(("name", "args"), [(n, dict(a)) for n, a in STUDY_TRAINABLE])
def test_torch_twins_have_the_studys_trainable_parameters(name, args):
    assert _torch_trainable(name, args) == STUDY_TRAINABLE[_key(name, args)]


def test_resnet18_means_the_studys_cifar_resnet_and_imagenet_has_its_own_name():
    assert get_workload("torch", "resnet18").name == "resnet18_cifar"
    assert get_workload("tf", "resnet18").name == "resnet18_cifar"
    assert get_workload("torch", "resnet18_imagenet").layout == "torchvision"
    assert get_workload("tf", "MediumCNN 7*7").name == "mediumcnn_7x7"
    assert get_workload("tf", "inceptionv3").name == "inception_v3"


def test_smallcnn_pools_after_each_convolution():
    described = describe_one("smallcnn", "torch", None, {})
    kinds = [row.kind for row in described.layers]
    assert kinds.count("MaxPool2d") == 3
    assert described.macs_per_example == 2_213_184  # 6.6x less than without pooling


@needs_study
@pytest.mark.slow
def test_our_tf_models_are_the_studys_layer_for_layer(probe):
    models = probe["models"]
    assert {_key(m["name"], m["args"]) for m in models} == set(STUDY_TRAINABLE)
    for model in models:
        study, ours = model["study"], model["ours"]
        assert ours["signature"] == study["signature"], model["name"]
        assert (
            ours["trainable"]
            == study["trainable"]
            == STUDY_TRAINABLE[_key(model["name"], model["args"])]
        )
        assert ours["non_trainable"] == study["non_trainable"], model["name"]
        assert ours["macs"] == study["macs"] and ours["input_shape"] == study["input_shape"]


@needs_study
@pytest.mark.slow
def test_the_studys_batchnorm_keeps_keras_defaults(probe):
    medium = next(m for m in probe["models"] if m["name"] == "MediumCNN 3*3")
    norms = [row[1] for row in medium["ours"]["signature"] if row[0] == "BatchNormalization"]
    assert norms and all(n["momentum"] == 0.99 and n["epsilon"] == 0.001 for n in norms)
    torch_norms = [
        m
        for m in get_workload("torch", "mediumcnn")
        .builder(BuildContext({"kernel": 3}, "default", (3, 224, 224), 1000))
        .modules()
        if type(m).__name__ == "BatchNorm2d"
    ]
    assert torch_norms and all(m.momentum == 0.01 and m.eps == 1e-3 for m in torch_norms)


@needs_study
@pytest.mark.slow
def test_each_torch_twin_has_the_tf_parameters_and_macs(probe):
    for twin in probe["twins"]:
        torch_twin = describe_one(twin["name"], "torch", None, twin["args"])
        got = (
            torch_twin.trainable_params,
            torch_twin.non_trainable_params,
            torch_twin.macs_per_example,
        )
        assert got == (twin["trainable"], twin["non_trainable"], twin["macs"]), twin


ONE_PER_FAMILY = (
    "resnet50",
    "inceptionv3",
    "xception",
    "densenet121",
    "mobilenet",
    "vgg16",
    "efficientnetb0",
)
"""The smallest keras.applications model of each family overhead_test.py builds; all 16 with
NNR_ALL_APPLICATIONS=1 (about 12 minutes on a 2-core machine)."""


@needs_study
@pytest.mark.slow
def test_keras_applications_are_the_overhead_scripts_models():
    everything = os.environ.get("NNR_ALL_APPLICATIONS") == "1"
    names = [] if everything else list(ONE_PER_FAMILY)
    proc = subprocess.run(
        [sys.executable, str(HERE / "study_probe.py"), "applications", *names],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    models = json.loads(proc.stdout.strip().splitlines()[-1])["applications"]
    assert len(models) == (16 if everything else len(ONE_PER_FAMILY))
    for model in models:
        study, ours = model["study"], model["ours"]
        assert (ours["trainable"], ours["non_trainable"]) == (
            study["trainable"],
            study["non_trainable"],
        ), model["name"]
        assert ours["signature"] == study["signature"], model["name"]
        assert ours["macs"] == study["macs"], model["name"]


def test_torch_twins_start_from_kerass_initial_weights():
    workload = get_workload("torch", "smallcnn")
    model = workload.builder(BuildContext({"bn": False}, "default", (3, 32, 32), 10))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    for module in convs:
        fan_in = module.weight[0].numel()
        fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
        limit = math.sqrt(6 / (fan_in + fan_out))  # Glorot uniform
        assert module.weight.abs().max() <= limit and module.weight.abs().max() > 0.8 * limit
        assert not module.bias.any()
