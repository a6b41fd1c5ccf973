"""Framework adapters: how to set a mode, seed, build, step, synchronise, time and hash weights.

A trial talks to a framework only through its adapter, so the trial has no framework branches.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Protocol

import numpy as np

from nnr_profile.core.errors import MissingDependencyError
from nnr_profile.core.modes import Mode
from nnr_profile.workloads.registry import Workload
from nnr_profile.workloads.timing import IterationTimer

INSTALL_HINTS = {
    "torch": "pip install 'nnr-profile[torch]'  (or: pip install torch torchvision)",
    "tf": "pip install 'nnr-profile[tf]'  (or: pip install tensorflow)",
    "jax": "pip install 'nnr-profile[jax]'  (or: pip install jax flax)",
}
FRAMEWORK_MODULES = {"torch": "torch", "tf": "tensorflow", "jax": "jax"}
ADAPTER_MODULES = {
    "torch": "nnr_profile.workloads.torch.adapter",
    "tf": "nnr_profile.workloads.tf.adapter",
    "jax": "nnr_profile.workloads.jax.adapter",
}


class TrainingSession(Protocol):
    """A built workload ready to train on synthetic batches already on the device."""

    def step(self) -> Any:
        """One training iteration (forward, loss, backward, optimizer); returns a loss handle."""

    def size_injected_work(self) -> dict[str, float]:
        """After warm-up: size the work the workload injects (`calibrate`); what was set, or {}."""

    def loss_value(self, handle: Any) -> float:
        """The float loss behind a handle from `step` (may synchronise)."""

    def sync(self) -> None:
        """Wait until all queued device work has finished."""

    def timer(self) -> IterationTimer:
        """A fresh per-iteration timer suited to the device."""

    def weights_hash(self) -> str:
        """SHA-256 over the raw bytes of every parameter and buffer, in a fixed order."""


class FrameworkAdapter(Protocol):
    """Everything framework-specific a trial needs."""

    name: str

    def apply_mode(self, mode: Mode) -> dict[str, object]:
        """Apply the mode's knobs in this process; return what was set."""

    def seed(self, seed: int) -> None:
        """Seed every generator the framework uses."""

    def prepare(
        self,
        workload: Workload,
        args: dict,
        mode: Mode,
        batch_size: int,
        input_shape: tuple[int, ...],
        device: str,
    ) -> TrainingSession:
        """Build the model, optimizer and a synthetic batch on `device` ('cpu' or 'cuda')."""

    def environment(self) -> dict[str, Any]:
        """Framework versions and its CUDA/cuDNN build, for the fingerprint."""


def framework_available(framework: str) -> bool:
    """Whether the framework's package and its adapter can be imported (without importing them)."""
    return (
        framework in ADAPTER_MODULES
        and importlib.util.find_spec(FRAMEWORK_MODULES[framework]) is not None
    )


def require_framework(framework: str) -> None:
    """Raise a MissingDependencyError naming the install command when `framework` is absent."""
    if not framework_available(framework):
        raise MissingDependencyError(
            f"framework {framework!r} is not installed; install it with: {INSTALL_HINTS[framework]}"
        )


def get_adapter(framework: str) -> FrameworkAdapter:
    """The adapter for `framework` (imports the framework)."""
    require_framework(framework)
    module = importlib.import_module(ADAPTER_MODULES[framework])
    return module.ADAPTER


def synthetic_batch(
    workload: Workload, classes: int, batch_size: int, input_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed synthetic batch (NumPy, seed 1234) the TensorFlow and JAX sessions train on:
    token ids and per-token targets, or standard-normal inputs with class (or 0/1
    multi-label) targets."""
    rng = np.random.default_rng(1234)
    if workload.input_kind == "tokens":
        inputs = rng.integers(0, workload.num_classes, (batch_size, *input_shape), np.int32)
        targets = rng.integers(0, workload.num_classes, (batch_size, *input_shape), np.int32)
    elif workload.recipe.multi_label:
        inputs = rng.standard_normal((batch_size, *input_shape), np.float32)
        targets = rng.integers(0, 2, (batch_size, classes)).astype(np.float32)
    else:
        inputs = rng.standard_normal((batch_size, *input_shape), np.float32)
        targets = rng.integers(0, classes, (batch_size,), np.int32)
    return inputs, targets
