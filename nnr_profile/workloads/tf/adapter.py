"""The TensorFlow (Keras 3) adapter: modes, seeds, synthetic batches, a tf.function train step.

The step is a `tf.function` (GradientTape, loss, optimizer update), not `model.fit`, whose
callbacks and progress output would be timed too. Timing: `PerfCounterTimer` with
`sync()` at both edges of each iteration; `sync()` is `tf.test.experimental.sync_devices()`
(blocks until every queued op on every device has finished), or, on TensorFlow without it,
reading the last step's loss to the host, which waits for the whole step because the copy is
queued behind the step's update kernels. So each iteration's time is the time of its own work.
GPU memory growth is turned on before TensorFlow first touches a GPU, so two trials on two
GPUs (or a trial next to another process) do not each grab a whole GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nnr_profile.core.errors import MissingDependencyError
from nnr_profile.core.modes import Mode
from nnr_profile.workloads.adapter import synthetic_batch
from nnr_profile.workloads.injection import find_injector, size_injection
from nnr_profile.workloads.recipes import Recipe
from nnr_profile.workloads.registry import BuildContext, Workload
from nnr_profile.workloads.tf.knobs import apply_tf_mode
from nnr_profile.workloads.timing import IterationTimer, PerfCounterTimer

_configured = False


def configure_devices() -> None:
    """Once, before TF starts its runtime: GPU memory growth on; OMP_NUM_THREADS caps TF's pools.

    TF ignores OMP_NUM_THREADS, which PyTorch obeys; applying it to TF's intra- and inter-op
    pools gives both frameworks the same CPU thread budget in a sweep.
    """
    global _configured
    if _configured:
        return
    _configured = True
    threads = os.environ.get("OMP_NUM_THREADS", "").strip()
    if threads.isdigit() and int(threads) > 0:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError):  # runtime up already: growth is fixed
            tf.config.experimental.set_memory_growth(gpu, True)


def build_optimizer(recipe: Recipe, learning_rate: Any) -> keras.optimizers.Optimizer:
    """The recipe's Keras optimizer at `learning_rate` (a float or a schedule)."""
    args = {k: v for k, v in recipe.optimizer_args.items() if v is not None}
    classes = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "adadelta": keras.optimizers.Adadelta,
    }
    return classes[recipe.optimizer](learning_rate=learning_rate, **args)


class OneHotCategoricalCrossentropy:
    """Keras's categorical cross-entropy, taking class indices (one-hot inside)."""

    def __init__(self, from_logits: bool, reduction: str = "sum_over_batch_size") -> None:
        self.loss = keras.losses.CategoricalCrossentropy(
            from_logits=from_logits, reduction=reduction
        )

    def __call__(self, targets: Any, outputs: Any) -> Any:
        """The loss of `outputs` against integer `targets`."""
        depth = int(outputs.shape[-1])
        return self.loss(tf.one_hot(tf.cast(targets, tf.int32), depth), outputs)


def build_loss(recipe: Recipe, reduction: str = "sum_over_batch_size") -> Any:
    """The recipe's Keras loss, called as loss(targets, outputs) with integer class targets."""
    if recipe.multi_label:
        return keras.losses.BinaryCrossentropy(from_logits=recipe.from_logits, reduction=reduction)
    if recipe.loss == "categorical_crossentropy":
        return OneHotCategoricalCrossentropy(recipe.from_logits, reduction)
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=recipe.from_logits, reduction=reduction
    )


def op_error(exc: tf.errors.OpError) -> RuntimeError:
    """A one-line error naming the TensorFlow op that failed (e.g. one refusing determinism)."""
    message = exc.message or str(exc)
    names = re.findall(r"\{\{node ([^}]+)\}\}", message) or re.findall(r"\[Op:(\w+)\]", message)
    op = names[0] if names else getattr(exc.op, "name", None) or "unknown"
    reasons = [
        line.strip()
        for line in message.splitlines()
        if line.strip()
        and not line.startswith(("\t", "  ", "Graph execution error", "Detected at node"))
    ]
    reason = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", reasons[-1] if reasons else message)
    return RuntimeError(f"TensorFlow op {op} failed ({type(exc).__name__}): {reason.strip()}")


class TfSession:
    """A Keras model, optimizer, compiled train step and one synthetic batch on one device."""

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        inputs: tf.Tensor,
        targets: tf.Tensor,
        device: str,
        recipe: Recipe | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.inputs = inputs
        self.targets = targets
        self.device = device
        self.recipe = recipe or Recipe()
        self.loss_fn = build_loss(self.recipe)
        self._last: tf.Tensor | None = None
        self._train_step = tf.function(self._step_body)

    def _step_body(self, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.loss_fn(targets, self.model(inputs, training=True))
        variables = self.model.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    def step(self) -> tf.Tensor:
        """One iteration: forward, loss, gradients, optimizer update (one tf.function call)."""
        try:
            with tf.device(self.device):
                self._last = self._train_step(self.inputs, self.targets)
        except tf.errors.OpError as exc:
            raise op_error(exc) from exc
        return self._last

    def size_injected_work(self) -> dict[str, float]:
        """After warm-up: size the work the model injects (`calibrate`); {} when it injects none."""
        injector = find_injector(self.model.layers)
        return {} if injector is None else size_injection(self, injector)

    def loss_value(self, handle: tf.Tensor) -> float:
        """The loss as a float."""
        return float(handle.numpy())

    def sync(self) -> None:
        """Wait until every queued op has finished (see the module docstring)."""
        try:
            sync_devices = getattr(tf.test.experimental, "sync_devices", None)
            if sync_devices is not None:
                sync_devices()
            elif self._last is not None:
                self._last.numpy()
        except tf.errors.OpError as exc:
            raise op_error(exc) from exc

    def timer(self) -> IterationTimer:
        """perf_counter after a device sync at both edges of each iteration (CPU and GPU)."""
        return PerfCounterTimer(self.sync)

    def weights_hash(self) -> str:
        """SHA-256 over shape, dtype and raw bytes of every weight, in the model's weight order."""
        digest = hashlib.sha256()
        for variable in self.model.weights:
            array = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


class TfAdapter:
    """TensorFlow: apply modes, seed, prepare sessions, report versions."""

    name = "tf"

    def apply_mode(self, mode: Mode) -> dict[str, object]:
        """Apply the mode's TensorFlow knobs (op determinism); `fast` sets nothing in TF."""
        configure_devices()
        return apply_tf_mode(mode)

    def seed(self, seed: int) -> None:
        """Fresh Keras state, then Python, NumPy, TF and Keras seeds via keras.utils."""
        configure_devices()
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)

    def prepare(
        self,
        workload: Workload,
        args: dict,
        mode: Mode,
        batch_size: int,
        input_shape: tuple[int, ...],
        device: str,
    ) -> TfSession:
        """Build the model, optimizer and a synthetic batch on `device`."""
        configure_devices()
        if device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise MissingDependencyError(
                "TensorFlow sees no GPU (tensorflow-cpu, or a build without CUDA: "
                f"{dict(tf.sysconfig.get_build_info())}); install it with: "
                "pip install 'tensorflow[and-cuda]'"
            )
        tf_device = "/GPU:0" if device == "cuda" else "/CPU:0"
        classes, recipe = workload.classes_for(args), workload.recipe
        inputs, targets = synthetic_batch(workload, classes, batch_size, input_shape)
        ctx = BuildContext(args, mode.name, input_shape, classes, mode.knobs)
        with tf.device(tf_device):
            model = workload.builder(ctx)
            optimizer = build_optimizer(recipe, recipe.learning_rate)
            optimizer.build(model.trainable_variables)
            inputs, targets = tf.identity(inputs), tf.identity(targets)
            return TfSession(model, optimizer, inputs, targets, tf_device, recipe)

    def environment(self) -> dict[str, Any]:
        """TF and Keras versions, TF's CUDA/cuDNN build info, and the GPU as TF sees it."""
        configure_devices()
        build = dict(tf.sysconfig.get_build_info())
        gpus = tf.config.list_physical_devices("GPU")
        info: dict[str, Any] = {
            "framework": "tf",
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "cuda": build.get("cuda_version"),
            "cudnn": build.get("cudnn_version"),
            "build_info": {key: str(value) for key, value in build.items()},
            "op_determinism_api": hasattr(tf.config.experimental, "enable_op_determinism"),
            "gpus_visible": len(gpus),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            capability = details.get("compute_capability")
            info["tf_device_name"] = details.get("device_name")
            info["tf_capability"] = ".".join(map(str, capability)) if capability else None
        return info


ADAPTER = TfAdapter()
