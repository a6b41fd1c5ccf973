"""Gradient signal-to-noise per layer, and implementation noise next to sampling noise.

For each parameter tensor ("layer"), over B minibatches drawn at the same weights:
SNR = |mean gradient| / sqrt(variance / B) per weight (variance with ddof=1), as in the
well-tempered backprop notebook; the table reports the share of weights with SNR < 1.

Implementation noise: the gradient of one minibatch is computed twice at the same weights
(same dropout draws); the L2 norm of the difference is set against the minibatch sampling
noise, the L2 norm of the per-weight standard deviation of single-minibatch gradients. The
measurement runs once per determinism mode, each mode in its own process (`python -m
nnr_profile.studies.grad_snr SPEC.json RESULT.json`), after `epochs` of training.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnr_profile.core.errors import NnrError, UsageError
from nnr_profile.core.modes import Mode
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK
from nnr_profile.runner.child import child_environment, launch_child, write_result

GRAD_SNR_COLUMNS = [
    "mode",
    "layer",
    "n_weights",
    "snr_median",
    "share_snr_below_1",
    "sampling_std_l2",
    "impl_diff_l2",
    "impl_max_abs_diff",
    "impl_to_sampling",
]


@dataclass(frozen=True)
class GradSnrSpec:
    """What to measure: workload on a dataset, after `epochs` of training, over `batches`."""

    workload: str
    dataset: str = "digits"
    data_dir: str | None = None
    modes: tuple[Mode, ...] = ()
    batches: int = 32
    batch_size: int = 64
    epochs: int = 1
    learning_rate: float | None = None
    seed: int = 0
    gpu_index: int | None = None
    workload_args: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = 3600.0

    def __post_init__(self) -> None:
        if self.batches < 2:
            raise UsageError(f"--batches must be at least 2, not {self.batches}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.epochs < 0:
            raise UsageError(f"--epochs must be 0 or more, not {self.epochs}")
        if not self.modes:
            raise UsageError("grad-snr needs at least one mode")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["modes"] = [m.to_dict() for m in self.modes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradSnrSpec:
        """The inverse of `to_dict`."""
        return cls(**{**data, "modes": tuple(Mode.from_dict(m) for m in data["modes"])})


def snr_summary(
    grad_sum: np.ndarray, grad_sumsq: np.ndarray, batches: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per weight (SNR, sampling std) from the sum and sum of squares of B minibatch gradients.

    SNR = |mean| / sqrt(var / B), var with ddof=1; 0 where mean and var are both 0, inf where
    only var is 0. The sampling std is sqrt(var), the noise of one minibatch gradient.
    """
    mean = grad_sum / batches
    var = np.maximum(grad_sumsq - batches * mean**2, 0.0) / (batches - 1)
    stderr = np.sqrt(var / batches)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(stderr > 0, np.abs(mean) / stderr, np.where(mean == 0, 0.0, np.inf))
    return snr, np.sqrt(var)


def layer_row(
    mode: str, layer: str, snr: np.ndarray, sampling_std: np.ndarray, impl_diff: np.ndarray
) -> dict[str, Any]:
    """One table row (GRAD_SNR_COLUMNS) from per-weight SNR, sampling std and impl. difference."""
    sampling = float(np.linalg.norm(sampling_std))
    impl = float(np.linalg.norm(impl_diff))
    return {
        "mode": mode,
        "layer": layer,
        "n_weights": int(snr.size),
        "snr_median": float(np.median(snr)),
        "share_snr_below_1": float(np.mean(snr < 1)),
        "sampling_std_l2": sampling,
        "impl_diff_l2": impl,
        "impl_max_abs_diff": float(np.max(np.abs(impl_diff))) if impl_diff.size else 0.0,
        "impl_to_sampling": impl / sampling if sampling > 0 else (0.0 if impl == 0 else np.inf),
    }


def measure(spec: GradSnrSpec, mode: Mode) -> list[dict[str, Any]]:
    """Train, then measure SNR and implementation noise in this process (mode already set)."""
    import torch
    from torch import nn

    from nnr_profile.workloads.adapter import get_adapter
    from nnr_profile.workloads.datasets import load_dataset
    from nnr_profile.workloads.registry import get_workload
    from nnr_profile.workloads.torch import training

    workload = get_workload("torch", spec.workload)
    args = workload.resolve_args(spec.workload_args)
    get_adapter("torch").apply_mode(mode)
    dataset = load_dataset(spec.dataset, spec.data_dir)
    device = "cpu" if spec.gpu_index is None else "cuda"
    model, tensors = training.prepare(workload, args, dataset, mode.name, device, spec.seed)
    if spec.epochs:
        training.train(
            model,
            workload,
            dataset,
            tensors,
            spec.epochs,
            spec.batch_size,
            spec.learning_rate or workload.learning_rate,
            spec.seed,
        )
    x_train, y_train = tensors[0], tensors[1]
    if spec.batches * spec.batch_size > len(y_train):
        raise UsageError(
            f"{spec.batches} batches of {spec.batch_size} need {spec.batches * spec.batch_size} "
            f"training examples; {dataset.name} has {len(y_train)}: lower --batches"
        )
    params = training.named_parameters_sorted(model)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(spec.seed))
    model.train()

    def gradient(batch: int) -> list[np.ndarray]:
        index = order[batch * spec.batch_size : (batch + 1) * spec.batch_size].to(device)
        torch.manual_seed(spec.seed + batch)  # the same dropout draws for the same minibatch
        model.zero_grad(set_to_none=True)
        loss_fn(training._logits(model(x_train[index])), y_train[index]).backward()
        return [
            np.zeros(p.numel())
            if p.grad is None
            else p.grad.detach().double().cpu().numpy().ravel()
            for _, p in params
        ]

    sums = [np.zeros(p.numel()) for _, p in params]
    sumsq = [np.zeros(p.numel()) for _, p in params]
    first: list[np.ndarray] = []
    for batch in range(spec.batches):
        grads = gradient(batch)
        if batch == 0:
            first = grads
        for i, g in enumerate(grads):
            sums[i] += g
            sumsq[i] += g * g
    again = gradient(0)
    rows = []
    for i, (name, _) in enumerate(params):
        snr, sampling = snr_summary(sums[i], sumsq[i], spec.batches)
        rows.append(layer_row(mode.name, name, snr, sampling, first[i] - again[i]))
    return rows


def run_grad_snr(spec: GradSnrSpec) -> pd.DataFrame:
    """Measure each mode in its own process; returns GRAD_SNR_COLUMNS rows, modes in order."""
    rows: list[dict[str, Any]] = []
    for mode in spec.modes:
        env = child_environment(mode, "torch", spec.gpu_index, spec.seed)
        payload = {"spec": spec.to_dict(), "mode": mode.to_dict()}
        outcome = launch_child("nnr_profile.studies.grad_snr", payload, env, spec.timeout_s)
        if outcome.status != STATUS_OK or outcome.result is None:
            raise NnrError(f"grad-snr in mode {mode.name} {outcome.status}: {outcome.error}")
        rows += outcome.result["rows"]
    return pd.DataFrame(rows, columns=GRAD_SNR_COLUMNS)


def main(argv: list[str]) -> int:
    """Process entry point: read {spec, mode}, measure, write {status, rows | error}."""
    spec_path, result_path = argv
    with open(spec_path, encoding="utf-8") as handle:
        payload = json.load(handle)
    try:
        rows = measure(GradSnrSpec.from_dict(payload["spec"]), Mode.from_dict(payload["mode"]))
        result: dict[str, Any] = {"status": STATUS_OK, "rows": rows}
    except Exception as exc:
        result = {
            "status": STATUS_FAILED,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=6),
        }
    write_result(result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
