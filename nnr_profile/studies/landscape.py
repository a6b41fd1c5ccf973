"""Loss landscape: the loss on a 2-D grid around trained weights (Li et al., 2018).

Two random directions are drawn (seeded) and filter-normalised: for every parameter with
more than one dimension, each filter (slice along dim 0) of the direction is scaled to the
norm of the same filter of the weights; one-dimensional parameters (biases, norm scales) get
no component. The loss at w + alpha d1 + beta d2 is evaluated on a fixed set of training
examples for alpha, beta in [-span, span].

The centre is either a model trained here, or a stored variability replica; the other
replicas of its study and setting are then projected into the plane (least squares onto
d1, d2) and their own loss recorded, so their spread can be drawn on the contour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnr_profile.core.errors import NnrError, UsageError


@dataclass(frozen=True)
class LandscapeSpec:
    """What to draw: workload on a dataset, grid size and span, where the centre comes from.

    With `db` the centre is replica `replica` of noise setting `setting` in that store (same
    workload and dataset); otherwise a model is trained here for `epochs`.
    """

    workload: str
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
    replica: int = 0

    def __post_init__(self) -> None:
        if self.steps < 3:
            raise UsageError(f"--steps must be at least 3, not {self.steps}")
        if self.span <= 0:
            raise UsageError(f"--span must be positive, not {self.span}")
        if self.examples < 1:
            raise UsageError(f"--examples must be at least 1, not {self.examples}")
        if self.epochs < 0:
            raise UsageError(f"--epochs must be 0 or more, not {self.epochs}")


@dataclass
class Landscape:
    """The grid (columns alpha, beta, loss) and projected replicas (label, alpha, beta, loss)."""

    surface: pd.DataFrame
    points: pd.DataFrame
    centre: str


def filter_normalised_direction(weights: list[np.ndarray], rng: np.random.Generator):
    """A random direction per parameter, filter-normalised; zero for 1-D parameters."""
    direction = []
    for w in weights:
        if w.ndim <= 1:
            direction.append(np.zeros_like(w))
            continue
        d = rng.standard_normal(w.shape).astype(np.float32)
        w_norm = np.linalg.norm(w.reshape(w.shape[0], -1), axis=1)
        d_norm = np.linalg.norm(d.reshape(d.shape[0], -1), axis=1)
        scale = w_norm / np.where(d_norm > 0, d_norm, 1.0)
        direction.append(d * scale.reshape((-1,) + (1,) * (w.ndim - 1)))
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
            (replicas["workload"] == spec.workload)
            & (replicas["dataset"] == spec.dataset)
            & (replicas["status"] == "ok")
            & ((replicas["setting"] == spec.setting) if spec.setting else True)
        ]
        if chosen.empty:
            raise NnrError(
                f"no successful {spec.workload} replicas on {spec.dataset}"
                + (f" in setting {spec.setting}" if spec.setting else "")
                + f" in {spec.db}: run 'nnr-profile variability' first"
            )
        weights = store.replica_weights(chosen["id"])
    return chosen, weights


def compute_landscape(spec: LandscapeSpec) -> Landscape:
    """Train or load the centre, draw two directions, evaluate the loss grid (in this process)."""
    import torch

    from nnr_profile.workloads.datasets import dataset_info, load_dataset
    from nnr_profile.workloads.registry import get_workload
    from nnr_profile.workloads.torch import training

    workload = get_workload("torch", spec.workload)
    args = workload.resolve_args(spec.workload_args)
    dataset = load_dataset(spec.dataset, spec.data_dir)
    device = "cpu" if spec.gpu_index is None else "cuda"
    model, tensors = training.prepare(workload, args, dataset, "default", device, spec.seed)
    x_eval, y_eval = tensors[0][: spec.examples], tensors[1][: spec.examples]
    others: dict[str, np.ndarray] = {}
    if spec.db:
        spec = LandscapeSpec(**{**spec.__dict__, "dataset": dataset_info(spec.dataset).name})
        chosen, weights = _stored_replicas(spec)
        centre_rows = chosen[chosen["replica"] == spec.replica]
        if centre_rows.empty:
            raise UsageError(
                f"replica {spec.replica} is not among the stored ones "
                f"({', '.join(str(r) for r in sorted(chosen['replica']))})"
            )
        centre_row = centre_rows.iloc[0]
        training.load_flat_weights(model, weights[int(centre_row["id"])])
        training.recompute_batchnorm(model, tensors[0])
        centre = f"{centre_row['setting']} replica {centre_row['replica']}"
        for row in chosen.itertuples():
            if row.id != centre_row["id"] and row.id in weights:
                others[f"{row.setting} r{row.replica}"] = weights[row.id]
    else:
        training.train(
            model,
            workload,
            dataset,
            tensors,
            spec.epochs,
            spec.batch_size or workload.default_batch_size,
            spec.learning_rate or workload.learning_rate,
            spec.seed,
        )
        centre = f"trained here ({spec.epochs} epochs, seed {spec.seed})"
    params = training.named_parameters_sorted(model)
    base = [p.detach().cpu().numpy().copy() for _, p in params]
    rng = np.random.default_rng(spec.seed)
    d1 = filter_normalised_direction(base, rng)
    d2 = filter_normalised_direction(base, rng)
    grid = np.linspace(-spec.span, spec.span, spec.steps)
    rows = []
    with torch.no_grad():
        for alpha in grid:
            for beta in grid:
                for (_, p), w, a, b in zip(params, base, d1, d2, strict=True):
                    p.copy_(torch.from_numpy(w + alpha * a + beta * b).to(p.device))
                rows.append((float(alpha), float(beta), training.mean_loss(model, x_eval, y_eval)))
    surface = pd.DataFrame(rows, columns=["alpha", "beta", "loss"])
    flat0 = np.concatenate([w.ravel() for w in base])
    flat1 = np.concatenate([d.ravel() for d in d1])
    flat2 = np.concatenate([d.ravel() for d in d2])
    points = []
    for label, other in others.items():
        alpha, beta = project(other - flat0, flat1, flat2)
        training.load_flat_weights(model, other)
        training.recompute_batchnorm(model, tensors[0])
        points.append((label, alpha, beta, training.mean_loss(model, x_eval, y_eval)))
    return Landscape(
        surface, pd.DataFrame(points, columns=["label", "alpha", "beta", "loss"]), centre
    )
