"""TensorFlow model for the analyses (gradient SNR, loss landscape): train, gradients, weights.

The twin of `analysis_torch` on `nnr_profile.workloads.tf.training`. Variables are in the
order of `training.variables_sorted`, the order of every flat weight vector; the dataset is
channels-last. Dropout follows a seed through `training.reseed_layers`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nnr_profile.workloads.datasets import Dataset
from nnr_profile.workloads.registry import Workload
from nnr_profile.workloads.tf import training
from nnr_profile.workloads.tf.adapter import build_loss, op_error


class TfAnalysisModel:
    """A workload's Keras model on a dataset's training arrays, seeded with `init_seed`."""

    filter_axis = -1
    """The axis of a weight that indexes its filters (Keras kernels end with output channels)."""

    def __init__(
        self,
        workload: Workload,
        args: dict[str, Any],
        dataset: Dataset,
        mode: str,
        device: str,
        init_seed: int,
    ) -> None:
        self.workload, self.dataset, self.device = workload, dataset, device
        training.seed_everything(init_seed)
        self.model = training.build_model(workload, args, dataset, mode, device)
        self.x_train, self.y_train, _, _ = training.model_arrays(dataset, workload)
        self.variables = training.variables_sorted(self.model)
        self.names = [v.path for v in self.variables]
        self.n_train = len(self.y_train)
        self._gradient_fn: Any = None

    def train(self, epochs: int, batch_size: int, learning_rate: float, data_seed: int) -> None:
        """Train as a replica does: dropout and data order from `data_seed`."""
        training.train(
            self.model,
            self.workload,
            self.dataset,
            epochs,
            batch_size,
            learning_rate,
            data_seed,
            self.device,
        )

    def _compiled_gradient(self) -> Any:
        with tf.device(training.tf_device(self.device)):
            x_all, y_all = tf.identity(self.x_train), tf.identity(self.y_train)
        loss_fn = build_loss(self.workload.recipe)
        model, variables = self.model, self.variables

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def gradient(index: tf.Tensor) -> list[tf.Tensor]:
            with tf.GradientTape() as tape:
                logits = training.model_logits(model(tf.gather(x_all, index), training=True))
                loss = loss_fn(tf.gather(y_all, index), logits)
            grads = tape.gradient(loss, variables)
            pairs = zip(grads, variables, strict=True)
            return [tf.zeros_like(v) if g is None else g for g, v in pairs]

        return gradient

    def gradient(self, index: np.ndarray, dropout_seed: int) -> list[np.ndarray]:
        """Per variable, the flattened float64 gradient of the mean loss on examples `index`.

        Dropout draws come from `dropout_seed`, so the same call twice draws the same masks.
        """
        if self._gradient_fn is None:
            self._gradient_fn = self._compiled_gradient()
        training.reseed_layers(self.model, dropout_seed)
        try:
            with tf.device(training.tf_device(self.device)):
                grads = self._gradient_fn(tf.constant(np.asarray(index, dtype=np.int32)))
        except tf.errors.OpError as exc:
            raise op_error(exc) from exc
        return [np.asarray(g.numpy(), dtype=np.float64).ravel() for g in grads]

    def weights(self) -> list[np.ndarray]:
        """Every trainable variable as a float32 array of its own shape."""
        return [np.array(keras.ops.convert_to_numpy(v), dtype=np.float32) for v in self.variables]

    def set_weights(self, arrays: list[np.ndarray]) -> None:
        """Assign `arrays` (as `weights` returns them) to the trainable variables."""
        for variable, array in zip(self.variables, arrays, strict=True):
            variable.assign(np.asarray(array).astype(variable.dtype))

    def load_flat(self, flat: np.ndarray) -> None:
        """Load a stored flat weight vector, then recompute BatchNorm statistics on the data."""
        training.load_flat_weights(self.model, flat)
        training.recompute_batchnorm(self.model, self.x_train, self.device)

    def loss(self, examples: int) -> float:
        """Mean loss (the workload's recipe) over the first `examples` training examples, in
        inference mode."""
        return training.mean_loss(
            self.model,
            self.x_train[:examples],
            self.y_train[:examples],
            self.device,
            self.workload.recipe,
        )
