"""Training recipes as data: optimizer, learning-rate schedule, loss, preprocessing, augmentation.

Each workload declares one `Recipe` (`register_workload(..., recipe=...)`); the PyTorch and
TensorFlow training loops and adapters build their optimizer, schedule and loss from it, so one
name trains one way in both frameworks. Optimizer arguments use Keras's names and defaults
(`epsilon`, `beta_1`, `rho`, ...); the PyTorch side maps them (Adam's `epsilon` 1e-7 becomes
torch's `eps`), so the twins take the same update.

`output` is what the network's last layer emits: `logits`, or `softmax` / `sigmoid`
probabilities, as the study's Keras models do (categorical or binary cross-entropy on
probabilities, with Keras's clipping at 1e-7). TensorFlow models end with that activation;
PyTorch twins emit logits and their loss applies the activation with the same clipping, which
is the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adadelta")
SCHEDULES = ("constant", "cosine", "step", "piecewise")
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")
OUTPUTS = ("logits", "softmax", "sigmoid")
PREPROCESSING = (
    "per_channel_standardization",
    "scale_255",
    "per_image_standardization",
    "none",
)
AUGMENTATIONS = ("flip", "pad_crop")
KERAS_EPSILON = 1e-7
"""Keras's `backend.epsilon()`: clipping of probabilities in its cross-entropies."""

KERAS_OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.0, "nesterov": False},
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adadelta": {"rho": 0.95, "epsilon": 1e-7},
}
"""Keras's own defaults for each optimizer's arguments (Keras names)."""


@dataclass(frozen=True)
class Recipe:
    """How a workload trains: optimizer and arguments, schedule, loss, inputs, provenance.

    `optimizer_args` use Keras names and fill Keras's defaults; `schedule` is `constant`,
    `cosine` (to zero over the run, per step), `step` (x `factor` every `every` epochs) or
    `piecewise` (x `factors[i]` from epoch `boundaries[i-1]`); `preprocessing` and
    `augmentation` name what the inputs get (`flip` applies only where the dataset allows
    flips); `augmentation_seed` None draws crops and flips from the replica's data seed, an
    int fixes them in every replica and noise setting (`nnr_profile.workloads.preprocessing`);
    `epochs` and `batch_size` the source's own (None: not fixed there); `source` where
    the recipe comes from.
    """

    optimizer: str = "sgd"
    learning_rate: float = 0.01
    optimizer_args: Mapping[str, Any] = field(default_factory=dict)
    schedule: str = "cosine"
    schedule_args: Mapping[str, Any] = field(default_factory=dict)
    loss: str = "sparse_categorical_crossentropy"
    output: str = "logits"
    preprocessing: str = "per_channel_standardization"
    augmentation: tuple[str, ...] = ("flip",)
    augmentation_seed: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    source: str = "nnr-profile"

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.optimizer, OPTIMIZERS, "optimizer"),
            (self.schedule, SCHEDULES, "schedule"),
            (self.loss, LOSSES, "loss"),
            (self.output, OUTPUTS, "output"),
            (self.preprocessing, PREPROCESSING, "preprocessing"),
        ):
            if value not in allowed:
                raise ValueError(f"recipe {what} must be one of {allowed}, not {value!r}")
        unknown = set(self.augmentation) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"recipe augmentation must be among {AUGMENTATIONS}: {unknown}")
        if self.augmentation_seed is not None and self.augmentation_seed < 0:
            raise ValueError("recipe augmentation_seed must be None or a non-negative int")
        extra = set(self.optimizer_args) - set(KERAS_OPTIMIZER_DEFAULTS[self.optimizer])
        if extra:
            raise ValueError(f"{self.optimizer} takes no argument {', '.join(sorted(extra))}")
        if self.output == "sigmoid" and self.loss != "binary_crossentropy":
            raise ValueError("sigmoid outputs train with binary_crossentropy")
        if self.loss == "binary_crossentropy" and self.output == "softmax":
            raise ValueError("binary_crossentropy takes sigmoid outputs or logits")
        args = {**KERAS_OPTIMIZER_DEFAULTS[self.optimizer], **self.optimizer_args}
        object.__setattr__(self, "optimizer_args", args)
        object.__setattr__(self, "augmentation", tuple(self.augmentation))

    @property
    def from_logits(self) -> bool:
        """Whether the loss takes logits (the network has no output activation)."""
        return self.output == "logits"

    @property
    def multi_label(self) -> bool:
        """Whether targets are one 0/1 vector per example (binary cross-entropy)."""
        return self.loss == "binary_crossentropy"

    def lr_factor(self, epoch: int, step: int, total_steps: int) -> float:
        """The learning-rate multiplier at `epoch` (0-based) and global `step` of `total_steps`."""
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
        if self.schedule == "step":
            every, factor = int(self.schedule_args["every"]), float(self.schedule_args["factor"])
            return factor ** (epoch // every)
        boundaries = list(self.schedule_args["boundaries"])
        factors = list(self.schedule_args["factors"])
        return float(factors[sum(epoch >= b for b in boundaries)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (what a trial records)."""
        return {
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "optimizer_args": dict(self.optimizer_args),
            "schedule": self.schedule,
            "schedule_args": {
                k: list(v) if isinstance(v, tuple | list) else v
                for k, v in self.schedule_args.items()
            },
            "loss": self.loss,
            "output": self.output,
            "preprocessing": self.preprocessing,
            "augmentation": list(self.augmentation),
            "augmentation_seed": self.augmentation_seed,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "source": self.source,
        }

    def summary(self) -> str:
        """One line, e.g. 'adam lr 0.001, constant, categorical_crossentropy on softmax'."""
        args = ", ".join(
            f"{k} {v}"
            for k, v in self.optimizer_args.items()
            if v != KERAS_OPTIMIZER_DEFAULTS[self.optimizer].get(k)
            or (self.optimizer == "sgd" and k == "momentum")
        )
        schedule = self.schedule
        if self.schedule_args:
            schedule += " (" + ", ".join(f"{k} {v}" for k, v in self.schedule_args.items()) + ")"
        inputs = self.preprocessing + "".join(f" + {a}" for a in self.augmentation)
        if self.augmentation and self.augmentation_seed is not None:
            inputs += f" (augmentation seed {self.augmentation_seed})"
        epochs = f", {self.epochs} epochs" if self.epochs else ""
        return (
            f"{self.optimizer} lr {self.learning_rate:g}{' (' + args + ')' if args else ''}, "
            f"{schedule}, {self.loss} on {self.output}, {inputs}{epochs} [{self.source}]"
        )


def legacy_recipe(optimizer: str, learning_rate: float) -> Recipe:
    """The recipe of a workload that declares none: SGD momentum 0.9 (or Adam/Adadelta), cosine.

    Adam's and Adadelta's other arguments stay each framework's own default (None).
    """
    args: dict[str, Any] = {"momentum": 0.9}
    if optimizer == "adam":
        args = {"epsilon": None}
    elif optimizer == "adadelta":
        args = {"rho": None, "epsilon": None}
    return Recipe(optimizer, learning_rate, args)


OVERHEAD = Recipe(
    "adam",
    1e-3,
    schedule="constant",
    loss="categorical_crossentropy",
    output="softmax",
    preprocessing="none",
    augmentation=(),
    batch_size=128,
    source="study overhead_test.py: model.compile(optimizer='adam', "
    "loss='categorical_crossentropy'), 224x224, 100 batches",
)
"""The study's overhead protocol: Adam at Keras's default rate, categorical CE on softmax."""

STUDY_SMALLCNN = Recipe(
    "adam",
    4e-4,
    schedule="piecewise",
    schedule_args={"boundaries": (50, 100), "factors": (1.0, 0.1, 0.01)},
    loss="categorical_crossentropy",
    output="softmax",
    preprocessing="scale_255",
    augmentation=(),
    epochs=200,
    batch_size=128,
    source="study smallcnn.py (lr 4e-4 from the paper; /10 at 50, /100 from 100)",
)
"""The study's small-CNN variability recipe."""

STUDY_RESNET18 = Recipe(
    "adam",
    4e-4,
    schedule="step",
    schedule_args={"every": 50, "factor": 0.1},
    loss="categorical_crossentropy",
    output="softmax",
    preprocessing="per_image_standardization",
    augmentation=("pad_crop", "flip"),
    augmentation_seed=1,
    epochs=200,
    batch_size=128,
    source="study resnet18.py + input_pipeline.py (lr 4e-4; x0.1 every 50 epochs)",
)
"""The study's CIFAR ResNet-18 variability recipe.

Its crops and flips are fixed in every run: `random_crop(seed=1)` and
`random_flip_left_right(seed=2)` with no global seed take TensorFlow's default global seed, and
map before the shuffle, so each image gets the same crop and flip in each epoch of every run.
"""

STUDY_CELEBA = Recipe(
    "adam",
    1e-3,
    schedule="step",
    schedule_args={"every": 5, "factor": 0.1},
    loss="binary_crossentropy",
    output="sigmoid",
    preprocessing="none",
    augmentation=(),
    epochs=10,
    batch_size=128,
    source="study resnet_celeba.py: 40 sigmoid outputs, BinaryCrossentropy, Adam 1e-3",
)
"""The study's CelebA recipe (all 40 attributes at once; images resized to 128x128, not scaled)."""

SEED_LENET = Recipe(
    "sgd", 0.01, {"momentum": 0.0}, source="grad-SNR notebook: optim.SGD(lr=0.01), momentum 0"
)
"""The grad-SNR notebook's Net (our lenet): plain SGD."""

SEED_MLP = Recipe("adam", 3e-4, source="loss-landscape notebook: Adam 3e-4")
"""The loss-landscape notebook's MLP family."""

SEED_KERAS_MNIST = Recipe(
    "adadelta",
    1.0,
    augmentation=(),
    source="Keras mnist_cnn example: Adadelta (Keras 2's default rate 1.0)",
)
"""Keras's MNIST convnet, as the TF reproducibility notebook trains it."""
