"""Dataset loading: offline digits, and a clear message for missing files."""

import numpy as np
import pytest

from nnr_profile.core.errors import NnrError, UsageError
from nnr_profile.workloads.datasets import dataset_info, load_dataset


def test_digits_is_a_fixed_standardised_split():
    first, second = load_dataset("digits"), load_dataset("digits")
    assert first.x_train.shape == (1437, 1, 8, 8) and first.x_test.shape == (360, 1, 8, 8)
    assert first.x_train.dtype == np.float32 and first.y_train.dtype == np.int64
    assert np.array_equal(first.x_test, second.x_test)
    assert np.array_equal(first.y_test, second.y_test)
    assert abs(float(first.x_train.mean())) < 1e-4
    assert set(first.y_test) == set(range(10))


def test_channels_last():
    assert load_dataset("digits", channels_last=True).x_train.shape == (1437, 8, 8, 1)


@pytest.mark.parametrize(
    ("name", "hint"),
    [("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw"), ("cifar100", "cifar-100")],
)
def test_missing_files_say_where_to_put_them(tmp_path, name, hint):
    with pytest.raises(NnrError, match="not found under") as info:
        load_dataset(name, tmp_path)
    assert hint in str(info.value) and str(tmp_path) in str(info.value)


def test_no_data_dir_and_unknown_names():
    with pytest.raises(UsageError, match="data_dir is needed for dataset"):
        load_dataset("mnist")
    with pytest.raises(UsageError, match="unknown dataset"):
        dataset_info("imagenet")
    assert dataset_info("CIFAR-10").name == "cifar10"


def test_celeba_is_a_binary_task_with_every_attribute_kept(celeba_dir):
    from nnr_profile.workloads.celeba import ATTRIBUTES, CACHE_NAME

    data = load_dataset("celeba", celeba_dir)
    assert data.name == "celeba:Blond_Hair" and data.num_classes == 2
    assert data.x_train.shape == (24, 3, 32, 32) and data.x_test.shape == (16, 3, 32, 32)
    assert data.x_train.dtype == np.float32 and abs(float(data.x_train.mean())) < 1e-4
    assert data.y_train.tolist() == [1, 0] * 12  # even-numbered files are blond
    assert data.attributes.shape == (16, 40) and data.attribute_names == list(ATTRIBUTES)
    blond = data.attribute_names.index("Blond_Hair")
    assert np.array_equal(data.attributes[:, blond], data.y_test.astype(bool))
    assert data.class_names == ["not Blond_Hair", "Blond_Hair"]
    # bright (blond) images stay brighter after the crop and downscale
    assert data.x_test[data.y_test == 1].mean() > data.x_test[data.y_test == 0].mean() + 1
    assert (celeba_dir / "celeba" / CACHE_NAME).exists()


def test_celeba_reads_its_cache_and_other_targets(celeba_dir):
    first = load_dataset("celeba", celeba_dir)
    for image in (celeba_dir / "celeba" / "img_align_celeba").iterdir():
        image.unlink()  # the cache alone must do now
    again = load_dataset("CelebA:smiling", celeba_dir, channels_last=True)
    assert again.name == "celeba:Smiling" and again.x_train.shape == (24, 32, 32, 3)
    assert np.array_equal(again.x_test, first.x_test.transpose(0, 2, 3, 1))
    smiling = first.attribute_names.index("Smiling")
    assert np.array_equal(again.y_test.astype(bool), first.attributes[:, smiling])


def test_celeba_problems_are_clear(tmp_path, celeba_dir):
    with pytest.raises(UsageError, match=r"no attribute 'Blonde'.*Blond_Hair"):
        dataset_info("celeba:Blonde")
    with pytest.raises(UsageError, match="data_dir is needed for dataset"):
        load_dataset("celeba")
    with pytest.raises(NnrError, match=r"list_attr_celeba\.txt") as info:
        load_dataset("celeba", tmp_path / "empty")
    assert "not found under" in str(info.value)
    (celeba_dir / "celeba" / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(NnrError, match=r"1 CelebA image.*000003\.jpg.*img_align_celeba\.zip"):
        load_dataset("celeba", celeba_dir)


def test_example_attributes_come_without_images(celeba_dir):
    from nnr_profile.workloads.datasets import example_attributes

    assert example_attributes("digits") is None
    frame = example_attributes("celeba", celeba_dir)
    assert list(frame.columns) == ["example", "attribute", "value"]
    assert len(frame) == 16 * 40 and frame["value"].dtype == bool
    assert sorted(frame["example"].unique()) == list(range(16))


def test_mnist_from_idx_files(tmp_path):
    from conftest import write_mnist

    data = load_dataset("mnist", write_mnist(tmp_path))
    assert data.x_train.shape == (64, 1, 28, 28) and data.x_test.shape == (32, 1, 28, 28)
    assert data.y_test.dtype == np.int64 and data.class_names[0].startswith("0")
    bright = [data.x_train[data.y_train == k].mean() for k in (0, 9) if (data.y_train == k).any()]
    assert bright == sorted(bright)
