"""The analyses' view of a model in either framework: set up the process, load data, build.

Gradient SNR and the loss landscape need the same few things of a model whatever its
framework (`AnalysisModel`); `open_analysis` gives the PyTorch (`analysis_torch`) or the
TensorFlow (`analysis_tf`) one, after the mode's knobs and the seed are applied.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.modes import Mode
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.trial import prepare_run
from nnr_profile.workloads.datasets import Dataset

ANALYSIS_FRAMEWORKS = ("torch", "tf")


class AnalysisModel(Protocol):
    """A built model with its training data: train it, take gradients, read and set weights."""

    names: list[str]
    n_train: int
    filter_axis: int

    def train(self, epochs: int, batch_size: int, learning_rate: float, data_seed: int) -> None:
        """Train for `epochs`; data order and dropout from `data_seed`."""

    def gradient(self, index: np.ndarray, dropout_seed: int) -> list[np.ndarray]:
        """Flat float64 gradient per parameter of the mean loss on training examples `index`."""

    def weights(self) -> list[np.ndarray]:
        """Every parameter as an array of its own shape."""

    def set_weights(self, arrays: list[np.ndarray]) -> None:
        """Set every parameter from `arrays` (as `weights` returns them)."""

    def load_flat(self, flat: np.ndarray) -> None:
        """Load a stored flat weight vector (and recompute normalisation statistics)."""

    def loss(self, examples: int) -> float:
        """Mean loss over the first `examples` training examples, in inference mode."""


def check_framework(framework: str) -> None:
    """A ParameterError unless the analyses support `framework`."""
    if framework not in ANALYSIS_FRAMEWORKS:
        raise ParameterError("framework", "must be torch or tf, not {value!r}", value=framework)


def open_analysis(
    framework: str,
    workload: str,
    dataset: str,
    data_dir: str | None,
    mode: Mode,
    gpu_index: int | None,
    init_seed: int,
    workload_args: dict[str, Any],
) -> tuple[AnalysisModel, Dataset, Any]:
    """Load the data, apply `mode` and seeds in this process, build: (model, dataset, workload).

    The data comes first: torchvision's readers must be loaded before TensorFlow, never after.
    """
    from nnr_profile.workloads.datasets import load_dataset
    from nnr_profile.workloads.registry import get_workload

    check_framework(framework)
    data = load_dataset(
        dataset,
        data_dir,
        channels_last=framework == "tf",
        preprocessing=get_workload(framework, workload).recipe.preprocessing,
    )
    run = prepare_run(
        TrialSpec(
            framework,
            workload,
            mode,
            gpu_index=gpu_index,
            seed=init_seed,
            workload_args=workload_args,
        )
    )
    device = "cpu" if gpu_index is None else "cuda"
    if framework == "tf":
        from nnr_profile.studies.analysis_tf import TfAnalysisModel as Model
    else:
        from nnr_profile.studies.analysis_torch import TorchAnalysisModel as Model
    model = Model(run.workload, run.args, data, mode.name, device, init_seed)
    return model, data, run.workload
