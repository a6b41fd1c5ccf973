"""Real datasets for variability runs, as framework-neutral NumPy arrays.

`load_dataset(name, data_dir, preprocessing=...)` returns a `Dataset`: float32 images in (N, C, H,
W) (or channels-last for TensorFlow with ``channels_last=True``) preprocessed as a recipe's
`preprocessing` names (default: standardised with the training set's per-channel mean and std; see
`nnr_profile.workloads.preprocessing`), int64 labels, and a held-out test set. Nothing is ever
downloaded: MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 are read through torchvision from files
under ``--data-dir`` in torchvision's layout, and a missing dataset is one clear error that says
where to put the files. CelebA (``celeba`` or ``celeba:ATTRIBUTE``) is a binary task on one
attribute (default Blond_Hair) whose test set keeps all 40 attributes for subgroup rates;
``celeba:all`` is the study's task, 40 attributes at once at 128x128 (targets (N, 40) of 0 and 1,
uint8 images); see `nnr_profile.workloads.celeba`. ``digits`` (scikit-learn's bundled 8x8 digits,
1,797 images, a fixed 1,437 / 360 train/test split) needs no files and is what tests and the demo
use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nnr_profile.core.errors import MissingDependencyError, NnrError, ParameterError, UsageError
from nnr_profile.workloads import celeba
from nnr_profile.workloads.preprocessing import preprocess

DIGITS_TEST_SIZE = 360
DIGITS_SPLIT_SEED = 0
DEFAULT_PREPROCESSING = "per_channel_standardization"


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: input shape (C, H, W), classes, files, augmentation, raw pixel range.

    `multi_label`: each example has `num_classes` 0/1 targets (the study's CelebA task).
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    torchvision_class: str | None = None
    folder_hint: str = ""
    flip_augment: bool = False
    target_attribute: str | None = None
    pixel_max: float = 255.0
    multi_label: bool = False


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", (1, 8, 8), 10, pixel_max=16.0),
    "mnist": DatasetInfo(
        "mnist",
        (1, 28, 28),
        10,
        "MNIST",
        "DATA_DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (gunzipped)",
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        (1, 28, 28),
        10,
        "FashionMNIST",
        "DATA_DIR/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (gunzipped)",
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        (3, 32, 32),
        10,
        "CIFAR10",
        "DATA_DIR/cifar-10-batches-py/ (unpacked cifar-10-python.tar.gz)",
        flip_augment=True,
    ),
    "cifar100": DatasetInfo(
        "cifar100",
        (3, 32, 32),
        100,
        "CIFAR100",
        "DATA_DIR/cifar-100-python/ (unpacked cifar-100-python.tar.gz)",
        flip_augment=True,
    ),
    "celeba": DatasetInfo(
        "celeba",
        (3, celeba.SIDE, celeba.SIDE),
        2,
        folder_hint=celeba.FOLDER_HINT,
        flip_augment=True,
        target_attribute=celeba.DEFAULT_TARGET,
    ),
}


@dataclass
class Dataset:
    """Train and test arrays of one dataset, ready for training.

    `x_*` are float32 (N, C, H, W) images preprocessed as `preprocessing` names (or (N, H, W, C)
    when loaded channels-last; uint8 raw pixels where `preprocessing` is `none` on 8-bit images: the
    training loops cast each batch), `y_*` int64 class indices (float32 (N, A) 0/1 targets for a
    multi-label dataset, with `class_names` its A outputs). `attributes` holds per-test-example
    binary attributes (N_test, A) with `attribute_names` (CelebA-like datasets; None otherwise).
    """

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)
    attributes: np.ndarray | None = None
    attribute_names: list[str] = field(default_factory=list)
    preprocessing: str = DEFAULT_PREPROCESSING

    @property
    def name(self) -> str:
        """The dataset's name."""
        return self.info.name

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.info.num_classes


def dataset_info(name: str) -> DatasetInfo:
    """The dataset's description, or a UsageError listing the known names.

    ``celeba:ATTRIBUTE`` names CelebA with that target attribute (``celeba`` alone: Blond_Hair);
    ``celeba:all`` the study's task on all 40 attributes at 128x128.
    """
    base, _, target = name.partition(":")
    if base.strip().lower() == "celeba":
        attribute = celeba.target_attribute(target or celeba.DEFAULT_TARGET)
        if attribute == celeba.ALL_ATTRIBUTES:
            side = celeba.STUDY_SIDE
            return replace(
                DATASETS["celeba"],
                name=f"celeba:{attribute}",
                input_shape=(3, side, side),
                num_classes=len(celeba.ATTRIBUTES),
                multi_label=True,
            )
        return replace(DATASETS["celeba"], name=f"celeba:{attribute}", target_attribute=attribute)
    key = name.strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}.get(
        key, key
    )
    if key not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
    return DATASETS[key]


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    channels_last: bool = False,
    preprocessing: str = DEFAULT_PREPROCESSING,
) -> Dataset:
    """Load `name` from `data_dir` (never downloads), preprocessed as a recipe names it.

    Digits needs no folder. Raises NnrError naming the expected file layout when the files are
    missing.
    """
    info = dataset_info(name)
    if info.multi_label:
        dataset = _celeba_all(info, data_dir)
    elif info.target_attribute is not None:
        dataset = _celeba(info, data_dir)
    elif info.name == "digits":
        dataset = _digits(info)
    else:
        dataset = _torchvision(info, data_dir)
    dataset.x_train, dataset.x_test = preprocess(
        dataset.x_train, dataset.x_test, preprocessing, info.pixel_max
    )
    dataset.preprocessing = preprocessing
    if channels_last:
        dataset.x_train = np.ascontiguousarray(dataset.x_train.transpose(0, 2, 3, 1))
        dataset.x_test = np.ascontiguousarray(dataset.x_test.transpose(0, 2, 3, 1))
    return dataset


def training_examples(name: str, data_dir: str | Path | None = None) -> int:
    """How many training examples `name` has; a missing dataset raises as `load_dataset` does.

    CelebA's are counted from its annotations, so no image is decoded.
    """
    info = dataset_info(name)
    if info.multi_label or info.target_attribute is not None:
        return celeba.training_examples(data_dir)
    return len(load_dataset(name, data_dir).y_train)


def _digits(info: DatasetInfo) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MissingDependencyError(
            "the digits dataset needs scikit-learn: pip install 'scikit-learn>=1.3'"
        ) from exc
    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    order = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(labels))
    train, test = order[:-DIGITS_TEST_SIZE], order[-DIGITS_TEST_SIZE:]
    return Dataset(
        info,
        images[train],
        labels[train],
        images[test],
        labels[test],
        [str(n) for n in bunch.target_names],
    )


def _celeba(info: DatasetInfo, data_dir: str | Path | None) -> Dataset:
    x_train, y_train, x_test, y_test, attributes = celeba.load_celeba(
        data_dir, info.target_attribute
    )
    target = info.target_attribute
    return Dataset(
        info,
        x_train,
        y_train,
        x_test,
        y_test,
        [f"not {target}", target],
        attributes,
        list(celeba.ATTRIBUTES),
    )


def _celeba_all(info: DatasetInfo, data_dir: str | Path | None) -> Dataset:
    x_train, y_train, x_test, y_test = celeba.load_celeba_all(data_dir)
    return Dataset(info, x_train, y_train, x_test, y_test, list(celeba.ATTRIBUTES))


def example_attributes(name: str, data_dir: str | Path | None = None):
    """The test split's per-example attributes (example, attribute, value), or None.

    Only the binary CelebA tasks have them (for subgroup rates; in the 40-attribute task they
    are the targets themselves); reading them decodes no image.
    """
    info = dataset_info(name)
    if info.target_attribute is None:
        return None
    return celeba.held_out_attributes(data_dir)


def _torchvision(info: DatasetInfo, data_dir: str | Path | None) -> Dataset:
    if data_dir is None:
        raise ParameterError(
            "data_dir",
            "is needed for dataset {name}: put its files at {hint} (nothing is downloaded)",
            name=info.name,
            hint=info.folder_hint,
        )
    root = Path(data_dir).expanduser()
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading {info.name} needs torchvision: pip install torchvision"
        ) from exc
    cls = getattr(tvd, info.torchvision_class)
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except (RuntimeError, OSError) as exc:
        where = info.folder_hint.replace("DATA_DIR", str(root))
        raise NnrError(
            f"dataset {info.name} not found under {root}: put its files at {where} "
            "(nothing is downloaded; torchvision's download=True on a networked machine "
            "writes this layout)"
        ) from exc

    def arrays(split) -> tuple[np.ndarray, np.ndarray]:
        data = np.asarray(split.data)
        # MNIST-like (N, H, W) gets a channel axis; CIFAR (N, H, W, C) goes channels-first
        data = data[:, None, :, :] if data.ndim == 3 else data.transpose(0, 3, 1, 2)
        return data.astype(np.float32), np.asarray(split.targets, dtype=np.int64)

    x_train, y_train = arrays(train)
    x_test, y_test = arrays(test)
    classes = [str(c) for c in getattr(train, "classes", range(info.num_classes))]
    return Dataset(info, x_train, y_train, x_test, y_test, classes)
