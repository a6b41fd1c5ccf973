"""Training recipes as data: what each workload declares, and the torch loop that follows it."""

import json
import math

import pytest
import torch

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.workloads.datasets import load_dataset
from nnr_profile.workloads.recipes import KERAS_EPSILON, Recipe
from nnr_profile.workloads.registry import get_workload, load_workloads
from nnr_profile.workloads.torch import training
from nnr_profile.workloads.torch.adapter import (
    ADAPTER,
    ProbabilityCrossEntropy,
    build_loss,
    build_optimizer,
)

OVERHEAD_MODELS = ["resnet50", "inception_v3", "densenet121", "vgg16", "efficientnet_b0"]


@pytest.mark.parametrize("framework", ["torch", "tf"])
@pytest.mark.parametrize("name", [*OVERHEAD_MODELS, "mediumcnn", "MediumCNN 7*7"])
def test_overhead_models_train_as_overhead_test_py(framework, name):
    recipe = get_workload(framework, name).recipe
    assert (recipe.optimizer, recipe.learning_rate, recipe.schedule) == ("adam", 1e-3, "constant")
    assert (recipe.loss, recipe.output) == ("categorical_crossentropy", "softmax")
    assert recipe.optimizer_args["epsilon"] == 1e-7  # Keras's Adam


def test_the_seeds_and_the_variability_scripts_declare_their_own_recipes():
    lenet, mlp = get_workload("torch", "lenet").recipe, get_workload("tf", "mlp").recipe
    assert (lenet.optimizer, lenet.learning_rate, lenet.optimizer_args["momentum"]) == (
        "sgd",
        0.01,
        0.0,
    )
    assert (mlp.optimizer, mlp.learning_rate) == ("adam", 3e-4)
    assert get_workload("tf", "keras_mnist_cnn").recipe.optimizer == "adadelta"
    celeba = get_workload("torch", "resnet18_celeba").recipe
    assert (celeba.loss, celeba.output, celeba.learning_rate, celeba.epochs) == (
        "binary_crossentropy",
        "sigmoid",
        1e-3,
        10,
    )
    small = get_workload("tf", "smallcnn").recipe
    assert small.augmentation == () and small.preprocessing == "scale_255"
    resnet = get_workload("torch", "resnet18_cifar").recipe
    assert resnet.augmentation == ("pad_crop", "flip")


@pytest.mark.parametrize(("framework", "name"), [("torch", "vit_b_16"), ("torch", "calibrate")])
def test_workloads_outside_the_study_keep_sgd_momentum_and_cosine(framework, name):
    recipe = get_workload(framework, name).recipe
    assert (recipe.optimizer, recipe.learning_rate, recipe.schedule) == ("sgd", 0.01, "cosine")
    assert recipe.optimizer_args["momentum"] == 0.9
    assert (recipe.loss, recipe.output) == ("sparse_categorical_crossentropy", "logits")


def test_every_workload_records_a_json_ready_recipe():
    for workload in load_workloads().values():
        data = workload.recipe.to_dict()
        assert data["optimizer"] == workload.optimizer
        assert data["learning_rate"] == workload.learning_rate


def test_schedules():
    piecewise = get_workload("torch", "smallcnn").recipe
    assert [piecewise.lr_factor(e, 0, 1) for e in (0, 49, 50, 99, 100, 199)] == [
        1.0,
        1.0,
        0.1,
        0.1,
        0.01,
        0.01,
    ]
    step = get_workload("torch", "resnet18_cifar").recipe
    assert step.lr_factor(150, 0, 1) == pytest.approx(1e-3)
    assert Recipe().lr_factor(0, 5, 10) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="sigmoid outputs train with binary_crossentropy"):
        Recipe(output="sigmoid")


def test_torch_optimizers_take_kerass_arguments():
    params = [torch.nn.Parameter(torch.zeros(2))]
    adam = build_optimizer(get_workload("torch", "mediumcnn").recipe, params, 1e-3)
    assert adam.defaults["eps"] == 1e-7 and adam.defaults["betas"] == (0.9, 0.999)
    sgd = build_optimizer(get_workload("torch", "lenet").recipe, params, 0.01)
    assert sgd.defaults["momentum"] == 0.0
    legacy = build_optimizer(get_workload("torch", "embedding_lm").recipe, params, 1e-3)
    assert legacy.defaults["eps"] == 1e-8  # a workload outside the study keeps torch's default


def test_categorical_on_softmax_is_kerass_clipped_arithmetic():
    logits = torch.tensor([[30.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    targets = torch.tensor([1, 2])
    loss = ProbabilityCrossEntropy()(logits, targets)
    probs = torch.softmax(logits, -1).clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
    expected = -(probs[0, 1].log() + probs[1, 2].log()) / 2
    assert loss.item() == pytest.approx(expected.item())
    assert loss.item() == pytest.approx(-math.log(KERAS_EPSILON) / 2 - probs[1, 2].log().item() / 2)
    binary = build_loss(get_workload("torch", "resnet18_celeba").recipe)
    assert binary(torch.zeros(2, 40), torch.ones(2, 40)).item() == pytest.approx(math.log(2))


def test_celeba_sessions_train_40_sigmoid_outputs_on_0_1_targets():
    workload = get_workload("torch", "resnet18_celeba")
    ADAPTER.seed(0)
    session = ADAPTER.prepare(workload, {}, MODES["default"], 2, (3, 32, 32), "cpu")
    assert session.targets.shape == (2, 40) and set(session.targets.unique().tolist()) <= {0, 1}
    assert math.isfinite(session.loss_value(session.step()))


def test_pad_crop_shifts_each_image_within_the_padding():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    offsets = torch.tensor([[0, 2], [1, 0]])
    cropped = training.pad_crop(images, offsets, pad=1)
    assert cropped.shape == images.shape
    for original, shifted, (dy, dx) in zip(images, cropped, offsets.tolist(), strict=True):
        padded = torch.nn.functional.pad(original, (1, 1, 1, 1))
        assert torch.equal(shifted, padded[:, dy : dy + 4, dx : dx + 4])


def test_torch_training_follows_the_smallcnn_recipe_on_digits():
    workload = get_workload("torch", "smallcnn")
    digits = load_dataset("digits")
    model, tensors = training.prepare(workload, {"bn": False}, digits, "default", "cpu", 0)
    losses = training.train(model, workload, digits, tensors, 2, 64, 3e-3, 0)
    assert len(losses) == 2 and losses[1] < losses[0]
    loss = training.mean_loss(model, tensors[2], tensors[3], workload.recipe)
    assert math.isfinite(loss) and loss < math.log(10)


def test_a_trial_can_record_the_recipe_it_ran_as_json():
    record = get_workload("torch", "smallcnn").recipe_record(1e-3)
    assert json.loads(json.dumps(record))["learning_rate"] == 1e-3
    assert record["optimizer"] == "adam" and record["loss"] == "categorical_crossentropy"


def test_the_40_attribute_model_refuses_a_one_label_dataset():
    digits = load_dataset("digits")
    with pytest.raises(UsageError, match="trains 40 attributes at once"):
        training.build_model(get_workload("torch", "resnet18_celeba"), {}, digits, "default", "cpu")
