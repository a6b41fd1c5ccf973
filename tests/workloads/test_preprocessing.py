"""Recipe preprocessing in the loaders and augmentation draws (workloads.preprocessing)."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_env, write_mnist

from nnr_profile.core.modes import MODES
from nnr_profile.studies.replica import ReplicaSpec, run_replica
from nnr_profile.workloads.datasets import load_dataset
from nnr_profile.workloads.preprocessing import (
    augmentation_draws,
    augmentation_rng,
    per_image_standardization,
)
from nnr_profile.workloads.recipes import STUDY_RESNET18, Recipe
from nnr_profile.workloads.registry import get_workload

TF_STANDARDISE = """
import sys
import numpy as np
import tensorflow as tf
x = np.load(sys.argv[1])
np.save(sys.argv[2], tf.image.per_image_standardization(tf.constant(x)).numpy())
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="no tensorflow")
def test_per_image_standardisation_equals_tensorflows(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 3, 6, 7)).astype(np.float32)
    images[1] = 42.0  # a constant image: the std floor 1/sqrt(N) is what divides
    images[2] *= 1e-3  # std below the floor
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    np.save(tmp_path / "x.npy", nhwc)
    proc = subprocess.run(
        [sys.executable, "-c", TF_STANDARDISE, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = np.load(tmp_path / "y.npy").transpose(0, 3, 1, 2)
    ours = per_image_standardization(images)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_scale_255_puts_raw_pixels_in_0_1(tmp_path):
    write_mnist(tmp_path)
    raw = np.frombuffer((tmp_path / "MNIST/raw/t10k-images-idx3-ubyte").read_bytes()[16:], np.uint8)
    mnist = load_dataset("mnist", tmp_path, preprocessing="scale_255")
    assert np.array_equal(mnist.x_test.reshape(-1), raw.astype(np.float32) / 255.0)
    digits = load_dataset("digits", preprocessing="scale_255")
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0  # digits' pixels: 0..16
    assert digits.preprocessing == "scale_255"


def test_each_recipe_gets_the_inputs_it_declares():
    by_recipe = {
        name: load_dataset(
            "digits", preprocessing=get_workload("torch", name).recipe.preprocessing
        ).x_train
        for name in ("smallcnn", "resnet18_cifar", "resnet18_celeba", "mlp")
    }
    arrays = list(by_recipe.values())
    for i, first in enumerate(arrays):
        for second in arrays[i + 1 :]:
            assert not np.allclose(first, second)
    per_image = by_recipe["resnet18_cifar"].reshape(1437, -1)
    assert np.allclose(per_image.mean(axis=1), 0.0, atol=1e-5)
    assert by_recipe["resnet18_celeba"].max() == 16.0  # `none`: raw pixels
    assert abs(float(by_recipe["mlp"].mean())) < 1e-4  # per-channel standardisation


def test_a_replica_loads_its_data_as_its_recipe_says(monkeypatch):
    asked = {}

    def load(name, data_dir=None, channels_last=False, preprocessing="?"):
        asked["preprocessing"] = preprocessing
        raise RuntimeError("stop here")

    monkeypatch.setattr("nnr_profile.workloads.datasets.load_dataset", load)
    spec = ReplicaSpec("torch", "resnet18_cifar", "digits", "control", 0, 0, 1, MODES["default"])
    assert run_replica(spec).error == "RuntimeError: stop here"
    assert asked["preprocessing"] == "per_image_standardization"


def test_the_studys_crops_and_flips_are_fixed_other_recipes_follow_the_data_seed():
    def draws(recipe: Recipe, data_seed: int) -> list[np.ndarray]:
        rng = augmentation_rng(recipe, data_seed)
        return [a for _ in range(2) for a in augmentation_draws(rng, 50, 4, True)]

    fixed_a, fixed_b = draws(STUDY_RESNET18, 1), draws(STUDY_RESNET18, 2)
    assert all(np.array_equal(a, b) for a, b in zip(fixed_a, fixed_b, strict=True))
    free_a, free_b = draws(Recipe(), 1), draws(Recipe(), 2)
    assert not all(np.array_equal(a, b) for a, b in zip(free_a, free_b, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(free_a, draws(Recipe(), 1), strict=True))
    offsets, mask = fixed_a[0], fixed_a[1]
    assert offsets.min() >= 0 and offsets.max() <= 8 and 0 < mask.sum() < 50
    assert not np.array_equal(fixed_a[0], fixed_a[2])  # each epoch draws anew
    none_offsets, none_mask = augmentation_draws(augmentation_rng(Recipe(), 0), 3, 0, False)
    assert not none_offsets.any() and not none_mask.any()
