"""PyTorch model for the analyses (gradient SNR, loss landscape): train, gradients, weights.

The TensorFlow twin is `analysis_tf`; `analysis.open_model` picks one. Parameters are in the
order of `training.named_parameters_sorted`, the order of every flat weight vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nnr_profile.workloads.datasets import Dataset
from nnr_profile.workloads.registry import Workload
from nnr_profile.workloads.torch import training
from nnr_profile.workloads.torch.adapter import build_loss


def _flat_gradient(param: nn.Parameter) -> np.ndarray:
    """The parameter's gradient as a flat float64 array (zeros where it got none)."""
    if param.grad is None:
        return np.zeros(param.numel())
    return param.grad.detach().double().cpu().numpy().ravel()


class TorchAnalysisModel:
    """A workload's PyTorch model on a dataset's training tensors, seeded with `init_seed`."""

    filter_axis = 0
    """The axis of a weight that indexes its filters (output channels / units)."""

    def __init__(
        self,
        workload: Workload,
        args: dict[str, Any],
        dataset: Dataset,
        mode: str,
        device: str,
        init_seed: int,
    ) -> None:
        self.workload, self.dataset = workload, dataset
        self.model, self.tensors = training.prepare(
            workload, args, dataset, mode, device, init_seed
        )
        self.params = training.named_parameters_sorted(self.model)
        self.names = [name for name, _ in self.params]
        self.n_train = len(self.tensors[1])
        self._loss = build_loss(workload.recipe)

    def train(self, epochs: int, batch_size: int, learning_rate: float, data_seed: int) -> None:
        """Train as a replica does: dropout and data order from `data_seed`."""
        training.seed_everything(data_seed)
        training.train(
            self.model,
            self.workload,
            self.dataset,
            self.tensors,
            epochs,
            batch_size,
            learning_rate,
            data_seed,
        )

    def gradient(self, index: np.ndarray, dropout_seed: int) -> list[np.ndarray]:
        """Per parameter, the flattened float64 gradient of the mean loss on examples `index`.

        Dropout draws come from `dropout_seed`, so the same call twice draws the same masks.
        """
        x_train, y_train = self.tensors[0], self.tensors[1]
        rows = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(x_train.device)
        self.model.train()
        torch.manual_seed(dropout_seed)
        self.model.zero_grad(set_to_none=True)
        self._loss(training.model_logits(self.model(x_train[rows])), y_train[rows]).backward()
        return [_flat_gradient(p) for _, p in self.params]

    def weights(self) -> list[np.ndarray]:
        """Every parameter as a float32 array of its own shape."""
        return [p.detach().float().cpu().numpy().copy() for _, p in self.params]

    @torch.no_grad()
    def set_weights(self, arrays: list[np.ndarray]) -> None:
        """Copy `arrays` (as `weights` returns them) into the parameters."""
        for (_, p), array in zip(self.params, arrays, strict=True):
            p.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(p.device, p.dtype))

    def load_flat(self, flat: np.ndarray) -> None:
        """Load a stored flat weight vector, then recompute BatchNorm statistics on the data."""
        training.load_flat_weights(self.model, flat)
        training.recompute_batchnorm(self.model, self.tensors[0])

    def loss(self, examples: int) -> float:
        """Mean loss (the workload's recipe) over the first `examples` training examples, in
        eval mode."""
        return training.mean_loss(
            self.model, self.tensors[0][:examples], self.tensors[1][:examples], self.workload.recipe
        )
