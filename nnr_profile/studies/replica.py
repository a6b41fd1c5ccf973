"""One variability replica: train a workload on a real dataset to the end, in its own process.

A replica applies its determinism mode, seeds initialisation with `init_seed` and data order with
`data_seed`, loads the data preprocessed as the workload's recipe says, trains for `epochs` with the
recipe's optimizer, schedule and augmentation, then predicts the held-out test set. It returns the
test accuracy, every test prediction (for a multi-label task, the study's CelebA, one 0/1 per
example and output, and the binary accuracy over them all), the per-epoch training loss and the
final weights (float32, parameters sorted by name, written to ``weights.npy`` beside the result).
`replica_task` is the child task; `launch_replica` runs it in its own process with a timeout.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nnr_profile.core.modes import Mode
from nnr_profile.core.params import COUNT, NON_NEGATIVE, POSITIVE, require, require_seed
from nnr_profile.core.specs import STATUS_FAILED, DeviceModeSpec
from nnr_profile.profiler.runner.child import child_environment, child_task, spawn_child
from nnr_profile.profiler.runner.trial import prepare_run, run_capturing


@dataclass(frozen=True)
class ReplicaSpec(DeviceModeSpec):
    """What one replica trains: workload, dataset, noise setting and its seeds, mode, schedule.

    `gpu_index` (None on the CPU) and `data_dir` are where it runs and reads, not what it is:
    they are left out of `replica_key`, so a resumed study may use other devices.
    """

    framework: str
    workload: str
    dataset: str
    setting: str
    replica: int
    init_seed: int
    data_seed: int
    mode: Mode
    epochs: int = 1
    batch_size: int = 128
    learning_rate: float = 0.01
    workload_args: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    gpu_index: int | None = None
    host: str = ""

    def __post_init__(self) -> None:
        require("epochs", self.epochs, COUNT)
        require("batch_size", self.batch_size, COUNT)
        require("learning_rate", self.learning_rate, POSITIVE)
        require("replica", self.replica, NON_NEGATIVE)
        require_seed("init_seed", self.init_seed)
        require("data_seed", self.data_seed, NON_NEGATIVE)

    @property
    def replica_key(self) -> str:
        """Identity of the replica (everything but device, data folder and host)."""
        data = self.to_dict()
        for key in ("gpu_index", "data_dir", "host"):
            data.pop(key)
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:24]


ARRAY_FIELDS = ("weights", "non_trainable_weights", "output_predictions", "output_labels")
"""The result's arrays: they travel from the child as .npy files, not in its JSON."""


@dataclass
class ReplicaResult:
    """Outcome of one replica: status, test accuracy and predictions, losses, final weights.

    `predictions` and `labels` are per test example in the dataset's test order; `weights` is
    the float32 parameter vector (None when the replica failed); `non_trainable_weights` the
    float32 BatchNorm moving statistics (empty without BatchNorm). A multi-label replica
    (binary cross-entropy on 0/1 targets) leaves `predictions` and `labels` empty: its
    `output_predictions` and `output_labels` are uint8 (examples, outputs) matrices of 0/1
    with `output_names` its outputs, and `test_accuracy` is the binary accuracy over every
    (example, output), as Keras's `BinaryAccuracy` counts it.
    """

    spec: ReplicaSpec
    status: str
    test_accuracy: float | None = None
    predictions: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    weights_hash: str | None = None
    weights: np.ndarray | None = None
    non_trainable_weights: np.ndarray | None = None
    output_predictions: np.ndarray | None = None
    output_labels: np.ndarray | None = None
    output_names: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    knobs_applied: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    wall_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (without the weights, which travel as a .npy file)."""
        data = {k: v for k, v in asdict(self).items() if k not in ARRAY_FIELDS}
        data["spec"] = self.spec.to_dict()
        return data


def run_replica(spec: ReplicaSpec) -> ReplicaResult:
    """Train `spec` in this process; any exception becomes a failed result with its text."""
    return run_capturing(_run, spec, ReplicaResult(spec=spec, status=STATUS_FAILED))


def _run(spec: ReplicaSpec, result: ReplicaResult) -> None:
    from nnr_profile.workloads.datasets import load_dataset
    from nnr_profile.workloads.registry import get_workload

    # the data first: torchvision's readers must be loaded before TensorFlow, never after
    recipe = get_workload(spec.framework, spec.workload).recipe  # imports no framework
    dataset = load_dataset(
        spec.dataset,
        spec.data_dir,
        channels_last=spec.framework == "tf",
        preprocessing=recipe.preprocessing,
    )
    run = prepare_run(spec, seed=spec.init_seed)
    result.environment = run.environment
    result.knobs_applied = run.knobs_applied
    train = _train_tf if spec.framework == "tf" else _train_torch
    predictions = train(spec, run.workload, run.args, dataset, result)
    if recipe.multi_label:
        result.output_predictions = predictions.astype(np.uint8)
        result.output_labels = dataset.y_test.astype(np.uint8)
        result.output_names = list(dataset.class_names)
    else:
        result.predictions = predictions.tolist()
        result.labels = dataset.y_test.tolist()
    result.test_accuracy = float((predictions == dataset.y_test).mean())
    result.weights_hash = hashlib.sha256(result.weights.tobytes()).hexdigest()


def _train_torch(
    spec: ReplicaSpec, workload: Any, args: dict[str, Any], dataset: Any, result: ReplicaResult
) -> np.ndarray:
    """Train with PyTorch; fills losses and weights, returns the test predictions."""

    from nnr_profile.workloads.torch import training

    model, tensors = training.prepare(
        workload, args, dataset, spec.mode.name, spec.device, spec.init_seed
    )
    training.seed_everything(spec.data_seed)  # dropout and anything else drawn while training
    result.losses = training.train(
        model,
        workload,
        dataset,
        tensors,
        spec.epochs,
        spec.batch_size,
        spec.learning_rate,
        spec.data_seed,
    )
    result.weights = training.flat_weights(model)
    result.non_trainable_weights = training.flat_non_trainable(model)
    return training.predict(model, tensors[2], workload.recipe.multi_label).numpy()


def _train_tf(
    spec: ReplicaSpec, workload: Any, args: dict[str, Any], dataset: Any, result: ReplicaResult
) -> np.ndarray:
    """Train with TensorFlow (channels-last data); as `_train_torch`."""
    from nnr_profile.workloads.tf import training

    training.seed_everything(spec.init_seed)
    model = training.build_model(workload, args, dataset, spec.mode.name, spec.device)
    result.losses = training.train(
        model,
        workload,
        dataset,
        spec.epochs,
        spec.batch_size,
        spec.learning_rate,
        spec.data_seed,
        spec.device,
    )
    result.weights = training.flat_weights(model)
    result.non_trainable_weights = training.flat_non_trainable(model)
    return training.predict(model, dataset.x_test, spec.device, workload.recipe)


@child_task(decode=ReplicaSpec.from_dict)
def replica_task(spec: ReplicaSpec) -> dict[str, Any]:
    """The child task of one replica: its result's fields, `weights` as an array."""
    result = run_replica(spec)
    arrays = {name: getattr(result, name) for name in ARRAY_FIELDS}
    return {**result.to_dict(), **arrays}


def launch_replica(spec: ReplicaSpec, timeout_s: float | None = None) -> ReplicaResult:
    """Run `spec` in its own process; a crash or timeout comes back as a result, not an error."""
    env = child_environment(
        spec.framework, spec.workload, spec.mode, spec.gpu_index, spec.init_seed
    )
    outcome = spawn_child(replica_task, spec, env, timeout_s)
    if outcome.result is None:
        return ReplicaResult(spec, outcome.status, error=outcome.error, wall_s=outcome.wall_s)
    data = {k: v for k, v in outcome.result.items() if k != "spec"}
    return ReplicaResult(spec=spec, **data)
