"""The study's CelebA task (`celeba:all`): 40 attributes at once, faces resized as TensorFlow does.

The study (`resnet_celeba.py`) feeds `tf.image.resize(image, (128, 128))` of each 178x218 face,
unscaled, with the 40 attributes stacked in TensorFlow Datasets' order as 0/1 targets. These
tests hold our loader to that: the resize against TensorFlow's own, the targets against the
annotation file, and the refusals when a model's recipe and the task's targets disagree.
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_env
from PIL import Image

from nnr_profile.core.errors import NnrError, UsageError
from nnr_profile.workloads.celeba import (
    ATTRIBUTES,
    STUDY_CACHE_NAME,
    read_annotations,
    resize_bilinear,
)
from nnr_profile.workloads.checks import check_labels
from nnr_profile.workloads.datasets import dataset_info, load_dataset, training_examples
from nnr_profile.workloads.registry import get_workload

HAS_TF = importlib.util.find_spec("tensorflow") is not None


TF_RESIZE = """
import sys
import numpy as np
import tensorflow as tf
for path in sys.argv[1:]:
    data = np.load(path)
    size = tuple(int(n) for n in data["size"])
    np.save(path + ".tf.npy", tf.image.resize(data["images"], size).numpy())
"""


@pytest.mark.skipif(not HAS_TF, reason="no tensorflow")
def test_the_resize_is_tensorflows_bit_for_bit(tmp_path):
    # TensorFlow runs in a process of its own: loaded here, it would crash torch's later imports
    rng = np.random.default_rng(0)
    cases = {
        tmp_path / "face.npz": (rng.integers(0, 256, (2, 218, 178, 3), np.uint8), (128, 128)),
        tmp_path / "odd.npz": (rng.integers(0, 256, (1, 20, 30, 3), np.uint8), (50, 7)),
    }
    for path, (images, size) in cases.items():
        np.savez(path, images=images, size=np.array(size))
    proc = subprocess.run(
        [sys.executable, "-c", TF_RESIZE, *map(str, cases)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for path, (images, size) in cases.items():
        theirs = np.load(f"{path}.tf.npy")
        ours = resize_bilinear(images, size)
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


def test_the_attributes_are_stacked_in_the_studys_order():
    # TensorFlow Datasets keeps CelebA's attributes in a dict sorted by name; the study stacks
    # them in that order, which is also list_attr_celeba.txt's
    assert list(ATTRIBUTES) == sorted(ATTRIBUTES) and len(ATTRIBUTES) == 40


def test_celeba_all_is_the_studys_task(celeba_dir):
    info = dataset_info("CelebA:ALL")
    assert info.name == "celeba:all" and info.multi_label and info.num_classes == 40
    assert info.input_shape == (3, 128, 128)
    data = load_dataset("celeba:all", celeba_dir, preprocessing="none")
    assert data.x_train.shape == (24, 3, 128, 128) and data.x_test.shape == (16, 3, 128, 128)
    assert data.x_train.dtype == np.uint8  # a quarter of float32's memory
    assert data.y_train.shape == (24, 40) and data.y_train.dtype == np.float32
    assert data.class_names == list(ATTRIBUTES)
    folder = celeba_dir / "celeba"
    table = read_annotations(folder)
    test = table[table["split"] == 2]
    assert np.array_equal(data.y_test, test[list(ATTRIBUTES)].to_numpy(dtype=np.float32))
    # every pixel is the study's float input rounded: within half an intensity level
    with Image.open(folder / "img_align_celeba" / test.index[0]) as image:
        face = np.asarray(image.convert("RGB"))
    exact = resize_bilinear(face[None], (128, 128))[0].transpose(2, 0, 1)
    assert np.abs(data.x_test[0].astype(np.float32) - exact).max() <= 0.5
    assert (folder / STUDY_CACHE_NAME).exists()
    channels_last = load_dataset("celeba:all", celeba_dir, channels_last=True, preprocessing="none")
    assert np.array_equal(channels_last.x_test, data.x_test.transpose(0, 2, 3, 1))


def test_celeba_all_reads_its_cache_and_counts_without_decoding(celeba_dir):
    first = load_dataset("celeba:all", celeba_dir, preprocessing="none")
    for image in (celeba_dir / "celeba" / "img_align_celeba").iterdir():
        image.unlink()
    again = load_dataset("celeba:all", celeba_dir, preprocessing="none")
    assert np.array_equal(again.x_train, first.x_train)
    (celeba_dir / "celeba" / STUDY_CACHE_NAME).unlink()
    assert training_examples("celeba:all", celeba_dir) == 24  # the annotations alone
    assert training_examples("celeba:Smiling", celeba_dir) == 24
    assert training_examples("digits") == 1437
    with pytest.raises(NnrError, match=r"40 CelebA image\(s\) listed .* are missing"):
        load_dataset("celeba:all", celeba_dir)


def test_a_recipe_and_targets_that_disagree_are_refused():
    celeba_model = get_workload("tf", "resnet18_celeba")
    with pytest.raises(UsageError, match="has one class per example: use resnet18"):
        check_labels(celeba_model, dataset_info("cifar10"))
    with pytest.raises(UsageError, match=r"celeba:all has 40 0/1 targets.*use resnet18_celeba"):
        check_labels(get_workload("torch", "resnet18_cifar"), dataset_info("celeba:all"))
    check_labels(celeba_model, dataset_info("celeba:all"))
    with pytest.raises(UsageError, match=r"use celeba:all \(the study's 40-attribute task\)"):
        dataset_info("celeba:everything")


@pytest.mark.parametrize("command", ["grad-snr", "landscape"])
def test_the_analyses_refuse_the_40_attribute_task_in_one_line(command, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", "analyze", command, "--model", "resnet18_celeba",
         "--dataset", "celeba:all", "--data-dir", str(tmp_path), "--gpu", "cpu",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=cli_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"analyze {command} takes a dataset of one class per example" in proc.stderr
    assert "use celeba:ATTRIBUTE" in proc.stderr
