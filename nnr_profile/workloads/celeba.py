"""CelebA as a binary task on one target attribute, or as the study's 40-attribute task.

Two tasks read the same files. ``celeba[:ATTRIBUTE]`` is a binary task on one attribute, every
attribute kept for subgroup rates. ``celeba:all`` is the study's task (`resnet_celeba.py`): all
40 attributes at once, each whole 178x218 face resized to 128x128 as ``tf.image.resize`` does
(bilinear, half-pixel centres, no antialiasing, the aspect ratio not kept), unscaled.

Files are read in torchvision's layout under ``DATA_DIR/celeba/``: ``img_align_celeba/*.jpg``,
``list_attr_celeba.txt`` (40 attributes, +1/-1) and ``list_eval_partition.txt`` (0 train,
1 validation, 2 test); the validation split is not used. The aligned 178x218 faces are centre-
cropped to 178x178 and downscaled to 32x32 RGB, so the 162,770 training images fit in memory
as float32 (2 GB). Decoding all 202,599 JPEGs takes minutes, so the decoded uint8 images are
cached once in ``nnr-profile-cache-32.npz`` beside the files (when the folder is writable).
The 40-attribute task keeps its 128x128 images as uint8 (8 GB for the training split, against
32 GB as float32), rounded from the resize's float values (at most half an intensity level
from the study's inputs), cached in ``nnr-profile-cache-study-128.npz``; the training loops
cast each batch to float32.

torchvision's own ``CelebA`` class is not used: it verifies the MD5 of each text file and
returns 178x218 tensors one at a time, while variability runs need the whole set as arrays.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from nnr_profile.core.errors import MissingDependencyError, NnrError, ParameterError, UsageError

SIDE = 32
STUDY_SIDE = 128
"""The side of the study's CelebA images (`resnet_celeba.py`: tf.image.resize to 128x128)."""
DEFAULT_TARGET = "Blond_Hair"
ALL_ATTRIBUTES = "all"
"""The target of the study's task: every attribute, one sigmoid output each (``celeba:all``)."""
ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
FOLDER_HINT = (
    "DATA_DIR/celeba/{img_align_celeba/*.jpg, list_attr_celeba.txt, list_eval_partition.txt}"
)
TRAIN, TEST = 0, 2
CACHE_NAME = f"nnr-profile-cache-{SIDE}.npz"
STUDY_CACHE_NAME = f"nnr-profile-cache-study-{STUDY_SIDE}.npz"


def target_attribute(text: str) -> str:
    """The CelebA attribute named by `text` (any case), or a UsageError listing all 40."""
    by_lower = {name.lower(): name for name in (*ATTRIBUTES, ALL_ATTRIBUTES)}
    name = by_lower.get(text.strip().lower())
    if name is None:
        raise UsageError(
            f"CelebA has no attribute {text!r}: use celeba:all (the study's 40-attribute "
            f"task) or celeba:ATTRIBUTE with one of {', '.join(ATTRIBUTES)}"
        )
    return name


def celeba_folder(data_dir: str | Path | None) -> Path:
    """The folder holding CelebA's files (DATA_DIR/celeba, or DATA_DIR itself)."""
    if data_dir is None:
        raise ParameterError(
            "data_dir",
            "is needed for dataset celeba: put its files at {hint} (nothing is downloaded)",
            hint=FOLDER_HINT,
        )
    root = Path(data_dir).expanduser()
    for folder in (root / "celeba", root):
        if (folder / "list_attr_celeba.txt").exists():
            if not (folder / "list_eval_partition.txt").exists():
                raise NnrError(f"CelebA under {folder} lacks list_eval_partition.txt")
            return folder
    where = FOLDER_HINT.replace("DATA_DIR", str(root))
    raise NnrError(f"dataset celeba not found under {root}: put its files at {where}")


def read_annotations(folder: Path) -> pd.DataFrame:
    """One row per image (index: file name, sorted): the 40 attributes as bool and `split`."""
    try:
        attributes = pd.read_csv(folder / "list_attr_celeba.txt", sep=r"\s+", skiprows=1)
        split = pd.read_csv(
            folder / "list_eval_partition.txt",
            sep=r"\s+",
            header=None,
            names=["split"],
            index_col=0,
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise NnrError(f"CelebA annotation files under {folder} are unreadable: {exc}") from exc
    missing = [name for name in ATTRIBUTES if name not in attributes.columns]
    if missing:
        raise NnrError(
            f"{folder / 'list_attr_celeba.txt'} lacks attribute(s) {', '.join(missing)}: "
            "is it CelebA's original file?"
        )
    table = (attributes[list(ATTRIBUTES)] == 1).join(split, how="inner")
    return table.sort_index()


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (2 * SIDE, 2 * SIDE))  # JPEG DCT scaling: decode at a fraction
        image = image.convert("RGB")
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        box = (left, top, left + side, top + side)
        return np.asarray(image.resize((SIDE, SIDE), Image.Resampling.BILINEAR, box=box))


def _decode_study(path: Path) -> np.ndarray:
    """The whole face resized to STUDY_SIDE as tf.image.resize does, rounded to uint8."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    resized = resize_bilinear(pixels[None], (STUDY_SIDE, STUDY_SIDE))[0]
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def _interpolation(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TensorFlow's half-pixel bilinear weights: (lower index, upper index, float32 lerp)."""
    scale = np.float32(in_size / out_size)
    where = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(where)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(where), in_size - 1).astype(np.int64)
    return lower, upper, (where - floor).astype(np.float32)


def resize_bilinear(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) images resized to `size` as ``tf.image.resize(images, size)``: float32.

    TensorFlow 2's default: bilinear with half-pixel centres and no antialiasing
    (``ResizeBilinear(half_pixel_centers=True)``), each side scaled on its own.
    """
    x = np.asarray(images, dtype=np.float32)
    top_index, bottom_index, y_lerp = _interpolation(x.shape[1], size[0])
    left_index, right_index, x_lerp = _interpolation(x.shape[2], size[1])
    x_lerp = x_lerp[None, None, :, None]
    rows_top, rows_bottom = x[:, top_index], x[:, bottom_index]
    top = (
        rows_top[:, :, left_index]
        + (rows_top[:, :, right_index] - rows_top[:, :, left_index]) * x_lerp
    )
    bottom = (
        rows_bottom[:, :, left_index]
        + (rows_bottom[:, :, right_index] - rows_bottom[:, :, left_index]) * x_lerp
    )
    return top + (bottom - top) * y_lerp[None, :, None, None]


def _images(folder: Path, names: list[str], study: bool = False) -> np.ndarray:
    """uint8 (N, side, side, 3) images for `names`, from the cache or decoded (and cached).

    `study`: the study's 128x128 resize of the whole face, else the 32x32 centre crop.
    """
    cache = folder / (STUDY_CACHE_NAME if study else CACHE_NAME)
    if cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            if list(data["names"]) == names:
                return data["images"]
    try:
        import PIL  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("reading CelebA needs Pillow: pip install pillow") from exc
    paths = [folder / "img_align_celeba" / name for name in names]
    absent = [p for p in paths if not p.exists()]
    if absent:
        raise NnrError(
            f"{len(absent)} CelebA image(s) listed in list_attr_celeba.txt are missing, e.g. "
            f"{absent[0]}: unpack img_align_celeba.zip into {folder}"
        )
    decode = _decode_study if study else _decode
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        images = np.stack(list(pool.map(decode, paths)))
    _write_cache(cache, names, images)
    return images


def _write_cache(cache: Path, names: list[str], images: np.ndarray) -> None:
    """Write the cache atomically; a read-only data folder just goes without one."""
    try:
        handle, temp = tempfile.mkstemp(dir=cache.parent, suffix=".npz")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, names=np.array(names), images=images)
        os.replace(temp, cache)
    except OSError:
        Path(temp).unlink(missing_ok=True)


def load_celeba(
    data_dir: str | Path | None, target: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test, test_attributes) for the binary task on `target`.

    Images are float32 (N, 3, 32, 32) raw pixels in [0, 255]; labels int64 (1 where `target`
    holds); `test_attributes` bool (N_test, 40) in `ATTRIBUTES` order.
    """
    folder = celeba_folder(data_dir)
    table = read_annotations(folder)
    table = table[table["split"].isin([TRAIN, TEST])]
    images = _images(folder, [str(name) for name in table.index])
    x = images.transpose(0, 3, 1, 2).astype(np.float32)
    is_train = (table["split"] == TRAIN).to_numpy()
    y = table[target].to_numpy(dtype=np.int64)
    attributes = table.loc[~is_train, list(ATTRIBUTES)].to_numpy(dtype=bool)
    if not is_train.any() or is_train.all():
        raise NnrError(f"CelebA under {folder} needs both train (0) and test (2) images")
    return x[is_train], y[is_train], x[~is_train], y[~is_train], attributes


def load_celeba_all(
    data_dir: str | Path | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) for the study's task on all 40 attributes.

    Images are uint8 (N, 3, 128, 128) raw pixels (the study feeds them unscaled); targets
    float32 (N, 40) of 0 and 1 in `ATTRIBUTES` order, the order in which the study's
    `celebA_transform` stacks them (TensorFlow Datasets' attributes, sorted by name).
    """
    folder = celeba_folder(data_dir)
    table = read_annotations(folder)
    table = table[table["split"].isin([TRAIN, TEST])]
    is_train = (table["split"] == TRAIN).to_numpy()
    if not is_train.any() or is_train.all():
        raise NnrError(f"CelebA under {folder} needs both train (0) and test (2) images")
    images = _images(folder, [str(name) for name in table.index], study=True)
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    y = table[list(ATTRIBUTES)].to_numpy(dtype=np.float32)
    return x[is_train], y[is_train], x[~is_train], y[~is_train]


def training_examples(data_dir: str | Path | None) -> int:
    """The number of training images, from the annotations alone (no image decoded)."""
    folder = celeba_folder(data_dir)
    split = read_annotations(folder)["split"]
    if not (split == TRAIN).any() or not (split == TEST).any():
        raise NnrError(f"CelebA under {folder} needs both train (0) and test (2) images")
    return int((split == TRAIN).sum())


def held_out_attributes(data_dir: str | Path | None) -> pd.DataFrame:
    """The test split's attributes, long form: example, attribute, value (no image decoding)."""
    table = read_annotations(celeba_folder(data_dir))
    test = table.loc[table["split"] == TEST, list(ATTRIBUTES)].reset_index(drop=True)
    long = (
        test.rename_axis("example")
        .reset_index()
        .melt(id_vars="example", var_name="attribute", value_name="value")
    )
    return long.sort_values(["attribute", "example"], ignore_index=True)
