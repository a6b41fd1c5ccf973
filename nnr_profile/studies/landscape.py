"""Loss landscape: the loss on a 2-D grid around trained weights (Li et al., 2018).

Two random directions are drawn (seeded) and filter-normalised: for every parameter with
more than one dimension, each filter (slice along dim 0) of the direction is scaled to the
norm of the same filter of the weights; one-dimensional parameters (biases, norm scales) get
no component. The loss at w + alpha d1 + beta d2 is evaluated on a fixed set of training
examples for alpha, beta in [-span, span].

The centre is either a model trained here, or a stored variability replica; the other
replicas of its study and setting are then projected into the plane (least squares onto
d1, d2) and their own loss recorded, so their spread can be drawn on the contour.

PyTorch and TensorFlow alike (`analysis.open_analysis`); a filter is a slice along a weight's
output axis: the first in PyTorch, the last in Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnr_profile.core.errors import NnrError, ParameterError, UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.params import COUNT, NON_NEGATIVE, POSITIVE, Range, require, require_seed
from nnr_profile.studies.analysis import check_framework, open_analysis
from nnr_profile.workloads.checks import check_batches, check_labels, check_single_label
from nnr_profile.workloads.datasets import dataset_info
from nnr_profile.workloads.registry import get_workload


@dataclass(frozen=True)
class LandscapeSpec:
    """What to draw: workload on a dataset, grid size and span, where the centre comes from.

    With `db` the centre is replica `replica` (default 0) of noise setting `setting` in that
    store (same workload and dataset); otherwise a model is trained here for `epochs`.
    """

    workload: str
    framework: str = "torch"
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int = 5
    batch_size: int | None = None
    learning_rate: float | None = None
    steps: int = 21
    span: float = 1.0
    examples: int = 2048
    seed: int = 0
    gpu_index: int | None = None
    workload_args: dict[str, Any] = field(default_factory=dict)
    db: str | None = None
    setting: str | None = None
    replica: int | None = None

    def __post_init__(self) -> None:
        require("steps", self.steps, Range(integer=True, min=3))
        require("span", self.span, POSITIVE)
        require("examples", self.examples, COUNT)
        require("epochs", self.epochs, NON_NEGATIVE)
        require("batch_size", self.batch_size, COUNT, optional=True)
        require("learning_rate", self.learning_rate, POSITIVE, optional=True)
        require("replica", self.replica, NON_NEGATIVE, optional=True)
        require_seed("seed", self.seed)
        if self.db is None:
            for name in ("setting", "replica"):
                if getattr(self, name) is not None:
                    raise ParameterError(
                        name, "only applies with {db}, a store of variability replicas"
                    )
        check_framework(self.framework)
        workload = get_workload(self.framework, self.workload)
        workload.validate(self.workload_args, None)
        check_single_label(dataset_info(self.dataset), "analyze landscape")
        check_labels(workload, dataset_info(self.dataset))


@dataclass
class Landscape:
    """The grid (columns alpha, beta, loss) and projected replicas (label, alpha, beta, loss)."""

    surface: pd.DataFrame
    points: pd.DataFrame
    centre: str


def filter_normalised_direction(
    weights: list[np.ndarray], rng: np.random.Generator, axis: int = 0
) -> list[np.ndarray]:
    """A random direction per parameter, filter-normalised; zero for 1-D parameters.

    A filter is a slice along `axis` (0: PyTorch's output channels; -1: Keras's).
    """
    direction = []
    for w in weights:
        if w.ndim <= 1:
            direction.append(np.zeros_like(w))
            continue
        filters = np.moveaxis(w, axis, 0)
        d = rng.standard_normal(filters.shape).astype(np.float32)
        w_norm = np.linalg.norm(filters.reshape(filters.shape[0], -1), axis=1)
        d_norm = np.linalg.norm(d.reshape(d.shape[0], -1), axis=1)
        scale = w_norm / np.where(d_norm > 0, d_norm, 1.0)
        d = d * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        direction.append(np.moveaxis(d, 0, axis))
    return direction


def project(delta: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> tuple[float, float]:
    """Least-squares coordinates (alpha, beta) of `delta` in the plane spanned by d1, d2."""
    basis = np.stack([d1, d2], axis=1).astype(np.float64)
    coords, *_ = np.linalg.lstsq(basis, delta.astype(np.float64), rcond=None)
    return float(coords[0]), float(coords[1])


def _stored_replicas(spec: LandscapeSpec) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    from nnr_profile.store.database import Store

    with Store(spec.db, create=False) as store:
        replicas = store.replicas()
        chosen = replicas[
            (replicas["framework"] == spec.framework)
            & (replicas["workload"] == spec.workload)
            & (replicas["dataset"] == spec.dataset)
            & (replicas["status"] == "ok")
            & ((replicas["setting"] == spec.setting) if spec.setting else True)
        ]
        if chosen.empty:
            raise NnrError(
                f"no successful {spec.framework}/{spec.workload} replicas on {spec.dataset}"
                + (f" in setting {spec.setting}" if spec.setting else "")
                + f" in {spec.db}: run 'nnr-profile variability' first"
            )
        weights = store.replica_weights(chosen["id"])
    return chosen, weights


def compute_landscape(spec: LandscapeSpec) -> Landscape:
    """Train or load the centre, draw two directions, evaluate the loss grid (in this process)."""
    model, dataset, workload = open_analysis(
        spec.framework,
        spec.workload,
        spec.dataset,
        spec.data_dir,
        MODES["default"],
        spec.gpu_index,
        spec.seed,
        spec.workload_args,
    )
    others: dict[str, np.ndarray] = {}
    if spec.db:
        spec = LandscapeSpec(**{**spec.__dict__, "dataset": dataset.name})
        chosen, weights = _stored_replicas(spec)
        replica = spec.replica or 0
        centre_rows = chosen[chosen["replica"] == replica]
        if centre_rows.empty:
            raise UsageError(
                f"replica {replica} is not among the stored ones "
                f"({', '.join(str(r) for r in sorted(chosen['replica']))})"
            )
        centre_row = centre_rows.iloc[0]
        model.load_flat(weights[int(centre_row["id"])])
        centre = f"{centre_row['setting']} replica {centre_row['replica']}"
        for row in chosen.itertuples():
            if row.id != centre_row["id"] and row.id in weights:
                others[f"{row.setting} r{row.replica}"] = weights[row.id]
    else:
        batch_size = spec.batch_size or workload.default_batch_size
        if spec.epochs:
            args = workload.validate(spec.workload_args, None)
            check_batches(workload, args, batch_size, model.n_train)
        model.train(
            spec.epochs,
            batch_size,
            spec.learning_rate or workload.learning_rate,
            spec.seed,
        )
        centre = f"trained here ({spec.epochs} epochs, seed {spec.seed})"
    base = model.weights()
    rng = np.random.default_rng(spec.seed)
    d1 = filter_normalised_direction(base, rng, model.filter_axis)
    d2 = filter_normalised_direction(base, rng, model.filter_axis)
    grid = np.linspace(-spec.span, spec.span, spec.steps)
    rows = []
    for alpha in grid:
        for beta in grid:
            model.set_weights(
                [w + alpha * a + beta * b for w, a, b in zip(base, d1, d2, strict=True)]
            )
            rows.append((float(alpha), float(beta), model.loss(spec.examples)))
    surface = pd.DataFrame(rows, columns=["alpha", "beta", "loss"])
    flat0 = np.concatenate([w.ravel() for w in base])
    flat1 = np.concatenate([d.ravel() for d in d1])
    flat2 = np.concatenate([d.ravel() for d in d2])
    points = []
    for label, other in others.items():
        alpha, beta = project(other - flat0, flat1, flat2)
        model.load_flat(other)
        points.append((label, alpha, beta, model.loss(spec.examples)))
    return Landscape(
        surface, pd.DataFrame(points, columns=["label", "alpha", "beta", "loss"]), centre
    )
