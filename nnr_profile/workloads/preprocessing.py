"""A recipe's input preprocessing and its augmentation draws, in NumPy, for both frameworks.

`preprocess` turns raw pixel values (0 to the dataset's `pixel_max`) into what the recipe's
`preprocessing` names; it works on any layout, so the loader applies it before going
channels-last. `augmentation_draws` gives one epoch's crop offsets and flips per example in
dataset order, so an example's augmentation never depends on the data order; the PyTorch and
TensorFlow training loops apply them on the device.

The study's inputs: `smallcnn.py` divides by 255 (`scale_255`); `input_pipeline.py` applies
`tf.image.per_image_standardization` (`per_image_standardization`) before padding by 4 and
cropping back, then flipping; `resnet_celeba.py` feeds resized pixels unscaled (`none`).
"""

from __future__ import annotations

import numpy as np

from nnr_profile.workloads.recipes import PREPROCESSING, Recipe

PAD = 4
"""Pixels of zero padding before a random crop (the study's 40x40 -> 32x32)."""
AUGMENTATION_STREAM = 7
"""Tag mixed into the augmentation generator's seed, so it never repeats the data order's."""


def per_image_standardization(images: np.ndarray) -> np.ndarray:
    """`tf.image.per_image_standardization` per image: (x - mean) / max(std, 1/sqrt(N)), float32."""
    x = np.asarray(images, dtype=np.float32)
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean = flat.mean(axis=1)
    std = np.maximum(flat.std(axis=1), 1.0 / np.sqrt(flat.shape[1]))
    shape = (len(x),) + (1,) * (x.ndim - 1)
    return ((x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


def per_channel_standardization(
    x_train: np.ndarray, x_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both splits standardised with the training set's per-channel mean and std (N, C, H, W)."""
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0
    return (
        ((x_train - mean) / std).astype(np.float32),
        ((x_test - mean) / std).astype(np.float32),
    )


def preprocess(
    x_train: np.ndarray, x_test: np.ndarray, method: str, pixel_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Raw-pixel (N, C, H, W) splits as `method` (a recipe's `preprocessing`) makes them.

    `scale_255` maps 0..`pixel_max` onto [0, 1] (255 for 8-bit images); `none` keeps raw pixels
    (8-bit images stay uint8, a quarter of the memory: the training loops cast each batch).
    """
    if method == "per_channel_standardization":
        return per_channel_standardization(x_train, x_test)
    if method == "scale_255":
        return (x_train / pixel_max).astype(np.float32), (x_test / pixel_max).astype(np.float32)
    if method == "per_image_standardization":
        return per_image_standardization(x_train), per_image_standardization(x_test)
    if method == "none":
        return _raw(x_train), _raw(x_test)
    raise ValueError(f"preprocessing must be one of {PREPROCESSING}, not {method!r}")


def _raw(images: np.ndarray) -> np.ndarray:
    """Raw pixels as float32, or as they are when they are uint8."""
    return images if images.dtype == np.uint8 else images.astype(np.float32, copy=False)


def augmentation_rng(recipe: Recipe, data_seed: int) -> np.random.Generator:
    """The generator of a run's crops and flips: the recipe's fixed seed, else the data seed."""
    seed = data_seed if recipe.augmentation_seed is None else recipe.augmentation_seed
    return np.random.default_rng([seed, AUGMENTATION_STREAM])


def augmentation_draws(
    rng: np.random.Generator, count: int, pad: int, flip: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's per-example (dy, dx) crop offsets in 0..2*pad (int32) and flip mask (bool).

    Offsets are zeros without `pad`, the mask all false without `flip`.
    """
    offsets = (
        rng.integers(0, 2 * pad + 1, (count, 2), dtype=np.int32)
        if pad
        else np.zeros((count, 2), dtype=np.int32)
    )
    mask = rng.random(count) < 0.5 if flip else np.zeros(count, dtype=bool)
    return offsets, mask
