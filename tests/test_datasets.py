"""Dataset loading: offline digits, and a clear message for missing files."""

import numpy as np
import pytest

from nnr_profile.errors import NnrError, UsageError
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
    with pytest.raises(UsageError, match="needs --data-dir"):
        load_dataset("mnist")
    with pytest.raises(UsageError, match="unknown dataset"):
        dataset_info("imagenet")
    assert dataset_info("CIFAR-10").name == "cifar10"
