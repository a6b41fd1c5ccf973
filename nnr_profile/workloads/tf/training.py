"""Train a TensorFlow (Keras 3) workload on a real dataset to the end; read predictions, weights.

The counterpart of `nnr_profile.workloads.torch.training`, used by variability replicas. Two
seeds drive the randomness the study separates: `init_seed` (weight initialisation, via
`seed_everything` before `build_model`) and `data_seed` (data order, dropout, and crops and
flips unless the recipe fixes them). Kernel (implementation) noise is set by the determinism
mode, applied before this module is used. Datasets are channels-last: `load_dataset(name,
data_dir, channels_last=True)` gives (N, H, W, C) images, the layout the TF workloads are built
for.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nnr_profile.core.errors import MissingDependencyError, UsageError
from nnr_profile.workloads.checks import check_labels, training_input_shape
from nnr_profile.workloads.datasets import Dataset
from nnr_profile.workloads.preprocessing import PAD, augmentation_draws, augmentation_rng
from nnr_profile.workloads.recipes import Recipe
from nnr_profile.workloads.registry import BuildContext, Workload
from nnr_profile.workloads.tf.adapter import (
    build_loss,
    build_optimizer,
    configure_devices,
    op_error,
)

EVAL_BATCH = 1024
SEED_STATE = "seed_generator_state"
"""Name of the variable holding a Keras `SeedGenerator`'s state (dropout and other layers)."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras's global generators."""
    configure_devices()  # before anything starts TF's runtime (thread pools are fixed then)
    keras.utils.set_random_seed(seed)


def tf_device(device: str) -> str:
    """The TensorFlow device name for `device` ("cuda" or "cpu")."""
    return "/GPU:0" if device == "cuda" else "/CPU:0"


def model_input_shape(workload: Workload, dataset: Dataset) -> tuple[int, ...]:
    """The input shape the workload is built with for `dataset` (flattened for `features`)."""
    shape = tuple(int(n) for n in dataset.x_train.shape[1:])
    channels = dataset.info.input_shape[0]
    if len(shape) == 3 and shape[-1] != channels:
        raise UsageError(
            f"{dataset.name} is loaded channels-first {shape}; TensorFlow models take "
            "(H, W, C) images: load it with load_dataset(..., channels_last=True)"
        )
    return training_input_shape(workload, dataset.name, shape, shape[:2])


def build_model(
    workload: Workload, args: dict[str, Any], dataset: Dataset, mode: str, device: str
) -> keras.Model:
    """The workload's model for `dataset`'s inputs and classes, its variables on `device`.

    Keras's session is cleared first so that layer names, and with them the variable paths
    that order `flat_weights`, are the same for every model built in one process. Weights are
    drawn from Python's generator, which `seed_everything` seeds and the clearing keeps.
    """
    configure_devices()
    if device == "cuda" and not tf.config.list_physical_devices("GPU"):
        raise MissingDependencyError(
            "TensorFlow sees no GPU (tensorflow-cpu, or a build without CUDA); install it "
            "with: pip install 'tensorflow[and-cuda]'"
        )
    check_labels(workload, dataset.info)
    input_shape = model_input_shape(workload, dataset)
    keras.backend.clear_session(free_memory=False)
    ctx = BuildContext(args, mode, input_shape, dataset.num_classes)
    with tf.device(tf_device(device)):
        return workload.builder(ctx)


def model_arrays(
    dataset: Dataset, workload: Workload
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test as NumPy arrays (flattened for `features` models)."""
    x_train, x_test = dataset.x_train, dataset.x_test
    if workload.input_kind == "features":
        x_train = x_train.reshape(len(x_train), -1)
        x_test = x_test.reshape(len(x_test), -1)
    return x_train, dataset.y_train, x_test, dataset.y_test


def _model_inputs(model: keras.Model, inputs: np.ndarray) -> np.ndarray:
    """`inputs` flattened per example when the model takes flat features, else unchanged."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 2 and inputs.ndim > 2:
        return inputs.reshape(len(inputs), -1)
    return inputs


def model_logits(output: Any) -> tf.Tensor:
    """The logits of a model's output (its `logits` where it returns more, as inception_v3)."""
    return output.logits if hasattr(output, "logits") else output


def reseed_layers(model: keras.Model, seed: int) -> None:
    """Reset every Keras seed-generator state in `model` (dropout) from `seed`.

    Keras draws those states from Python's generator when a layer is built, i.e. from the
    init seed; resetting them here makes dropout follow the data seed, as in PyTorch.
    """
    states = sorted((v for v in model.variables if v.name == SEED_STATE), key=lambda v: v.path)
    if not states:
        return
    seeds = np.random.default_rng([seed, 1]).integers(1, 10**9, size=len(states))
    for variable, value in zip(states, seeds, strict=True):
        variable.assign(np.array([value, 0], dtype=variable.dtype))


def flip_images(images: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`images` (N, H, W, C) with those where `mask` is true flipped left-right (the W axis)."""
    return tf.where(mask[:, None, None, None], tf.reverse(images, axis=[2]), images)


def learning_rate_schedule(
    recipe: Recipe, learning_rate: float, epochs: int, steps_per_epoch: int
) -> Any:
    """The recipe's schedule from base rate `learning_rate`: a float or a Keras schedule."""
    total = max(1, epochs * steps_per_epoch)
    if recipe.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    factors = [recipe.lr_factor(epoch, 0, total) for epoch in range(epochs)]
    changes = [e for e in range(1, epochs) if factors[e] != factors[e - 1]]
    if not changes:
        return learning_rate * factors[0] if factors else learning_rate
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [e * steps_per_epoch - 1 for e in changes],
        [learning_rate * factors[0]] + [learning_rate * factors[e] for e in changes],
    )


def pad_crop(images: tf.Tensor, offsets: tf.Tensor, pad: int) -> tf.Tensor:
    """Each (H, W, C) image zero-padded by `pad` and cropped back at its (dy, dx) offset."""
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    padded = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(padded, cols, axis=2, batch_dims=1)


def train(
    model: keras.Model,
    workload: Workload,
    dataset: Dataset,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    data_seed: int,
    device: str,
) -> list[float]:
    """Train for `epochs` as the workload's recipe says; returns mean loss per epoch.

    Optimizer, schedule (from base rate `learning_rate`), loss and augmentation come from
    `workload.recipe`; data order from a NumPy generator seeded with `data_seed`, crops and
    flips per example from `augmentation_rng` (the recipe's fixed seed, else `data_seed`;
    flips only where the dataset allows them); dropout from seed-generator states
    reset from `data_seed` (`reseed_layers`).
    """
    x_train, y_train, _, _ = model_arrays(dataset, workload)
    recipe = workload.recipe
    steps_per_epoch = -(-len(y_train) // batch_size)
    schedule = learning_rate_schedule(recipe, learning_rate, epochs, steps_per_epoch)
    image = workload.input_kind == "image"
    flip = "flip" in recipe.augmentation and dataset.info.flip_augment and image
    crop = PAD if "pad_crop" in recipe.augmentation and image else 0
    rng = np.random.default_rng(data_seed)
    augment = augmentation_rng(recipe, data_seed)
    loss_fn = build_loss(recipe)
    reseed_layers(model, data_seed)
    name = tf_device(device)
    with tf.device(name):
        optimizer = build_optimizer(recipe, schedule)
        optimizer.build(model.trainable_variables)
        x_all, y_all = tf.identity(x_train), tf.identity(y_train)
        total = tf.Variable(0.0, dtype=tf.float32, trainable=False)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.bool),
            tf.TensorSpec([None, 2], tf.int32),
        ]
    )
    def step(index: tf.Tensor, mask: tf.Tensor, offsets: tf.Tensor) -> None:
        inputs = tf.cast(tf.gather(x_all, index), tf.float32)  # uint8 pixels cast per batch
        if crop:
            inputs = pad_crop(inputs, offsets, crop)
        if flip:
            inputs = flip_images(inputs, mask)
        targets = tf.gather(y_all, index)
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, model_logits(model(inputs, training=True)))
        variables = model.trainable_variables
        optimizer.apply(tape.gradient(loss, variables), variables)
        total.assign_add(loss * tf.cast(tf.size(index), tf.float32))

    losses: list[float] = []
    try:
        with tf.device(name):
            for _ in range(epochs):
                order = rng.permutation(len(y_train)).astype(np.int32)
                offsets, mask = augmentation_draws(augment, len(y_train), crop, flip)
                total.assign(0.0)
                for first in range(0, len(order), batch_size):
                    index = order[first : first + batch_size]
                    step(index, mask[index], offsets[index])
                losses.append(float(total.numpy()) / len(order))
    except tf.errors.OpError as exc:
        raise op_error(exc) from exc
    return losses


def predict(
    model: keras.Model, inputs: np.ndarray, device: str, recipe: Recipe | None = None
) -> np.ndarray:
    """Predictions in inference mode as int64: the argmax class per example, or for a
    multi-label `recipe` one 0/1 per output (probability above 0.5, the threshold of Keras's
    `BinaryAccuracy` and `TruePositives`; a positive logit where the model emits logits)."""
    inputs = _model_inputs(model, inputs)
    multi_label = recipe is not None and recipe.multi_label
    threshold = 0.0 if recipe is None or recipe.from_logits else 0.5
    out = []
    try:
        with tf.device(tf_device(device)):
            for i in range(0, len(inputs), EVAL_BATCH):
                batch = np.asarray(inputs[i : i + EVAL_BATCH], dtype=np.float32)
                outputs = model_logits(model(batch, training=False))
                picked = outputs > threshold if multi_label else tf.argmax(outputs, axis=-1)
                out.append(np.asarray(picked))
    except tf.errors.OpError as exc:
        raise op_error(exc) from exc
    if not out:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


def mean_loss(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    device: str,
    recipe: Recipe | None = None,
) -> float:
    """Mean loss over `inputs` in inference mode (the recipe's; default cross-entropy on logits)."""
    inputs = _model_inputs(model, inputs)
    loss_fn = build_loss(recipe or Recipe(), reduction="sum")
    total = 0.0
    try:
        with tf.device(tf_device(device)):
            for i in range(0, len(inputs), EVAL_BATCH):
                batch = np.asarray(inputs[i : i + EVAL_BATCH], dtype=np.float32)
                logits = model_logits(model(batch, training=False))
                total += float(loss_fn(targets[i : i + EVAL_BATCH], logits))
    except tf.errors.OpError as exc:
        raise op_error(exc) from exc
    return total / len(inputs)


def variables_sorted(model: keras.Model) -> list[Any]:
    """Trainable variables sorted by path (the order of every flat weight vector)."""
    return sorted(model.trainable_variables, key=lambda v: v.path)


def flat_weights(model: keras.Model) -> np.ndarray:
    """All trainable variables, sorted by path, flattened into one float32 vector."""
    parts = [
        np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float32).reshape(-1)
        for v in variables_sorted(model)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def flat_non_trainable(model: keras.Model) -> np.ndarray:
    """Non-trainable weights (BatchNorm moving statistics), sorted by path, as float32."""
    parts = [
        np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float32).reshape(-1)
        for v in sorted(model.non_trainable_weights, key=lambda v: v.path)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def load_flat_weights(model: keras.Model, flat: np.ndarray) -> None:
    """Copy a vector from `flat_weights` back into the model's trainable variables."""
    variables = variables_sorted(model)
    sizes = [int(np.prod(v.shape)) for v in variables]
    expected = sum(sizes)
    if flat.size != expected:
        raise UsageError(
            f"stored weights have {flat.size} values but the model has {expected}: "
            "same --model, --dataset and --workload-arg as the stored replicas?"
        )
    flat = np.asarray(flat, dtype=np.float32).reshape(-1)
    offset = 0
    for variable, size in zip(variables, sizes, strict=True):
        chunk = flat[offset : offset + size].reshape(tuple(variable.shape))
        variable.assign(chunk.astype(variable.dtype))
        offset += size


def _batchnorm_layers(model: keras.Model) -> list[Any]:
    """The model's BatchNormalization layers that are called once (their input is known)."""
    chosen = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            try:
                layer.input  # noqa: B018 (raises for shared or never-called layers)
            except (AttributeError, ValueError):
                continue
            chosen.append(layer)
    return chosen


def recompute_batchnorm(model: keras.Model, inputs: np.ndarray, device: str) -> None:
    """Recompute BatchNormalization moving statistics over `inputs` (after loading weights).

    The twin of PyTorch's `recompute_batchnorm`: each norm layer's moving mean and variance
    become the mean and variance of its input over all of `inputs`, taken in training mode
    (earlier norms normalise with batch statistics), as stored replicas keep only trainable
    variables.
    """
    norms = _batchnorm_layers(model)
    if not norms:
        return
    taps = keras.Model(model.inputs, [layer.input for layer in norms])
    inputs = _model_inputs(model, inputs)
    sums: list[Any] = [0.0] * len(norms)
    squares: list[Any] = [0.0] * len(norms)
    counts = [0] * len(norms)
    try:
        with tf.device(tf_device(device)):
            for i in range(0, len(inputs), EVAL_BATCH):
                outputs = taps(inputs[i : i + EVAL_BATCH], training=True)
                outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
                for k, (layer, tensor) in enumerate(zip(norms, outputs, strict=True)):
                    values = np.asarray(tensor.numpy(), dtype=np.float64)
                    axis = layer.axis % values.ndim
                    values = np.moveaxis(values, axis, -1).reshape(-1, values.shape[axis])
                    sums[k] = sums[k] + values.sum(axis=0)
                    squares[k] = squares[k] + (values**2).sum(axis=0)
                    counts[k] += len(values)
    except tf.errors.OpError as exc:
        raise op_error(exc) from exc
    for k, layer in enumerate(norms):
        mean = sums[k] / counts[k]
        variance = np.maximum(squares[k] / counts[k] - mean**2, 0.0)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
