"""TensorFlow training checks run in a child process: TF and torch crash when loaded in one.

`python tests/workloads/tf_training_probe.py` trains small TF workloads on the offline digits
dataset
with `nnr_profile.workloads.tf.training` and prints one JSON object with what
tests/test_tf_training.py asserts (run it with CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from nnr_profile.core.errors import NnrError
from nnr_profile.core.modes import MODES
from nnr_profile.workloads.datasets import Dataset, load_dataset
from nnr_profile.workloads.registry import get_workload


def digest(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    array = np.ascontiguousarray(array)
    return hashlib.sha256(f"{array.dtype}{array.shape}".encode() + array.tobytes()).hexdigest()


def train_once(
    name: str,
    dataset: Dataset,
    init_seed: int = 0,
    data_seed: int = 0,
    epochs: int = 2,
    args: dict[str, Any] | None = None,
    mode: str = "default",
    augmentation: tuple[str, ...] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Train `name` as a replica does (its recipe; `augmentation` replaces the recipe's)."""
    from nnr_profile.workloads.tf import training

    workload = get_workload("tf", name)
    if augmentation is not None:
        workload = replace(workload, recipe=replace(workload.recipe, augmentation=augmentation))
    rate = 0.05 if workload.optimizer == "sgd" else 3e-3
    resolved = workload.resolve_args(args or {})
    began = time.perf_counter()
    training.seed_everything(init_seed)
    model = training.build_model(workload, resolved, dataset, mode, "cpu")
    training.seed_everything(data_seed)
    losses = training.train(model, workload, dataset, epochs, 64, rate, data_seed, "cpu")
    predictions = training.predict(model, dataset.x_test, "cpu")
    weights = training.flat_weights(model)
    return {
        "losses": losses,
        "accuracy": float((predictions == dataset.y_test).mean()),
        "test_loss": training.mean_loss(
            model, dataset.x_test, dataset.y_test, "cpu", workload.recipe
        ),
        "predictions_dtype": str(predictions.dtype),
        "predictions_shape": list(predictions.shape),
        "predictions": digest(predictions),
        "weights": digest(weights),
        "weights_dtype": str(weights.dtype),
        "weights_size": int(weights.size),
        "params": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "wall_s": time.perf_counter() - began,
    }, model


def error_text(call: Any) -> str | None:
    """`call()`'s NnrError as 'Type: message' (None when it raises nothing)."""
    try:
        call()
    except NnrError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def round_trip(digits: Dataset) -> dict[str, Any]:
    """flat_weights of a trained mlp loaded into a freshly built one (other init seed)."""
    from nnr_profile.workloads.tf import training

    trained, model = train_once("mlp", digits, epochs=1)
    flat = training.flat_weights(model)
    workload = get_workload("tf", "mlp")
    training.seed_everything(5)
    fresh = training.build_model(workload, workload.resolve_args({}), digits, "default", "cpu")
    before = training.flat_weights(fresh)
    training.load_flat_weights(fresh, flat)
    after = training.flat_weights(fresh)
    predictions = training.predict(fresh, digits.x_test, "cpu")
    cnn = get_workload("tf", "smallcnn")
    small = training.build_model(cnn, cnn.resolve_args({}), digits, "default", "cpu")
    return {
        "fresh_differs": digest(before) != digest(flat),
        "restored_equal": bool(np.array_equal(after, flat)),
        "restored_predictions": digest(predictions) == trained["predictions"],
        "restored_loss": training.mean_loss(fresh, digits.x_test, digits.y_test, "cpu"),
        "trained_loss": trained["test_loss"],
        "paths": [v.path for v in training.variables_sorted(fresh)],
        "into_smallcnn": error_text(lambda: training.load_flat_weights(small, flat)),
        "one_short": error_text(lambda: training.load_flat_weights(fresh, flat[:-1])),
    }


def shapes(digits: Dataset) -> dict[str, Any]:
    """model_input_shape for the models replicas take, and its refusals."""
    from nnr_profile.workloads.tf import training

    first = load_dataset("digits")  # channels-first, as PyTorch loads it
    return {
        "mlp": list(training.model_input_shape(get_workload("tf", "mlp"), digits)),
        "smallcnn": list(training.model_input_shape(get_workload("tf", "smallcnn"), digits)),
        "tokens": error_text(
            lambda: training.model_input_shape(get_workload("tf", "embedding_lm"), digits)
        ),
        "too_small": error_text(
            lambda: training.model_input_shape(get_workload("tf", "resnet18"), digits)
        ),
        "channels_first": error_text(
            lambda: training.model_input_shape(get_workload("tf", "smallcnn"), first)
        ),
    }


def augmentation_and_dropout(digits: Dataset) -> dict[str, Any]:
    """flip_images against NumPy, and dropout seed states after reseed_layers."""
    from nnr_profile.workloads.tf import training

    images = digits.x_train[:6]
    mask = np.array([True, False, True, True, False, False])
    flipped = training.flip_images(training.tf.constant(images), mask).numpy()
    expected = np.where(mask[:, None, None, None], images[:, :, ::-1, :], images)
    workload = get_workload("tf", "mlp")
    args = workload.resolve_args({"dropout": 0.5})
    states = {}
    for init_seed, data_seed in ((0, 7), (1, 7), (0, 8), (0, None)):
        training.seed_everything(init_seed)
        model = training.build_model(workload, args, digits, "default", "cpu")
        if data_seed is not None:
            training.reseed_layers(model, data_seed)
        found = [v for v in model.variables if v.name == training.SEED_STATE]
        states[f"{init_seed}/{data_seed}"] = [v.numpy().tolist() for v in found]
    return {
        "flip_matches_numpy": bool(np.array_equal(flipped, expected)),
        "flip_changes_images": not np.array_equal(flipped, images),
        "dropout_states": states,
    }


def gpu_refusal(digits: Dataset) -> str | None:
    """The error when a model is built for a GPU that TF does not see (None if TF sees one)."""
    import tensorflow as tf

    from nnr_profile.workloads.tf import training

    if tf.config.list_physical_devices("GPU"):
        return None
    workload = get_workload("tf", "mlp")
    return error_text(lambda: training.build_model(workload, {}, digits, "default", "cuda"))


def main() -> int:
    """Run every check and print the results as JSON."""
    began = time.perf_counter()
    from nnr_profile.workloads.tf import training  # imports TensorFlow

    import_s = time.perf_counter() - began
    digits = load_dataset("digits", channels_last=True)
    flipped = replace(digits, info=replace(digits.info, flip_augment=True))

    def run(name: str, **kw: Any) -> dict[str, Any]:
        return train_once(name, kw.pop("dataset", digits), **kw)[0]

    result: dict[str, Any] = {
        "import_s": import_s,
        "mlp": [run("mlp"), run("mlp"), run("mlp", data_seed=1), run("mlp", init_seed=1)],
        "dropout": [
            run("mlp", args={"dropout": 0.5}, epochs=1),
            run("mlp", args={"dropout": 0.5}, epochs=1),
            run("mlp", args={"dropout": 0.5}, epochs=1, data_seed=1),
        ],
        "smallcnn": [run("smallcnn"), run("smallcnn")],
        "flip": [
            run("smallcnn", dataset=flipped, epochs=1, augmentation=("flip",)),
            run("smallcnn", dataset=flipped, epochs=1, augmentation=("flip",)),
            run("smallcnn", epochs=1, augmentation=("flip",)),
        ],
        "round_trip": round_trip(digits),
        "shapes": shapes(digits),
        "augmentation": augmentation_and_dropout(digits),
        "gpu_refusal": gpu_refusal(digits),
        "thread_pools": [
            training.tf.config.threading.get_intra_op_parallelism_threads(),
            training.tf.config.threading.get_inter_op_parallelism_threads(),
        ],
    }
    # Op determinism is process-wide and cannot be turned off again: keep it last.
    from nnr_profile.workloads.adapter import get_adapter

    result["knobs"] = get_adapter("tf").apply_mode(MODES["deterministic"])
    result["deterministic"] = [
        run("mlp", mode="deterministic"),
        run("mlp", mode="deterministic"),
        run("smallcnn", mode="deterministic", epochs=1),
    ]
    result["total_s"] = time.perf_counter() - began
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
