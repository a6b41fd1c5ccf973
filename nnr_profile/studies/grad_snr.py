"""Gradient signal-to-noise per layer, and the noise of a setting next to sampling noise.

For each parameter tensor ("layer"), over B minibatches drawn at the same weights:
SNR = |mean gradient| / sqrt(variance / B) per weight (variance with ddof=1), as in the
well-tempered backprop notebook; the table reports the share of weights with SNR < 1.

Each run (its own process: the child task `measure_task`, through `launch_measure`) trains
`epochs`, then takes the gradients of B fixed minibatches (the same examples and dropout
draws in every run). Two noises are set against the minibatch sampling noise (the
L2 norm of the per-weight standard deviation of single-minibatch gradients):

- implementation noise within a run: the first minibatch's gradient taken twice at the same
  weights (L2 norm of the difference); 0 where kernels are deterministic (always on a CPU);
- replica noise of a noise setting (`--settings`, the study's comparison): the first
  minibatch's gradient in each of R replicas trained under the setting (ALGO+IMPL, ALGO,
  IMPL, CONTROL: seeds and kernels as in `variability`); the L2 norm of its per-weight
  standard deviation over replicas (ddof=1) says how far the setting moves training apart.

`--modes` compares determinism modes instead: one run per mode, seeds fixed (the earlier
form of this analysis; replica columns are NaN there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnr_profile.core.errors import NnrError, ParameterError, UsageError
from nnr_profile.core.modes import MODES, Mode
from nnr_profile.core.params import COUNT, NON_NEGATIVE, POSITIVE, Range, require, require_seed
from nnr_profile.core.specs import STATUS_OK
from nnr_profile.profiler.runner.child import child_environment, child_task, spawn_child
from nnr_profile.studies.analysis import check_framework
from nnr_profile.studies.variability import NOISE_SETTINGS, NoiseSetting, replica_seeds
from nnr_profile.workloads.checks import check_batches, check_labels, check_single_label
from nnr_profile.workloads.datasets import dataset_info
from nnr_profile.workloads.registry import get_workload

GRAD_SNR_COLUMNS = [
    "framework",
    "setting",
    "mode",
    "replicas",
    "layer",
    "n_weights",
    "snr_median",
    "share_snr_below_1",
    "sampling_std_l2",
    "impl_diff_l2",
    "impl_max_abs_diff",
    "impl_to_sampling",
    "replica_std_l2",
    "replica_to_sampling",
]
DEFAULT_REPLICAS = 3


@dataclass(frozen=True)
class GradSnrRun:
    """One measuring process: its noise setting (None when comparing modes), mode and seeds."""

    setting: str | None
    mode: Mode
    replica: int
    init_seed: int
    data_seed: int

    @property
    def group(self) -> str:
        """What the run is compared under: its setting, else its mode."""
        return self.setting or self.mode.name

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {**asdict(self), "mode": self.mode.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradSnrRun:
        """The inverse of `to_dict`."""
        return cls(**{**data, "mode": Mode.from_dict(data["mode"])})


@dataclass(frozen=True)
class GradSnrSpec:
    """What to measure: workload on a dataset, after `epochs` of training, over `batches`.

    Either `settings` (R = `replicas` runs per noise setting, default 3) or `modes` (one run
    per mode, seeds fixed), not both.
    """

    workload: str
    framework: str = "torch"
    dataset: str = "digits"
    data_dir: str | None = None
    settings: tuple[NoiseSetting, ...] = ()
    modes: tuple[Mode, ...] = ()
    replicas: int | None = None
    batches: int = 32
    batch_size: int = 64
    epochs: int = 1
    learning_rate: float | None = None
    seed: int = 0
    gpu_index: int | None = None
    workload_args: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = 3600.0

    def __post_init__(self) -> None:
        require("batches", self.batches, Range(integer=True, min=2))
        require("batch_size", self.batch_size, COUNT)
        require("epochs", self.epochs, NON_NEGATIVE)
        require("replicas", self.replicas, Range(integer=True, min=2), optional=True)
        require("learning_rate", self.learning_rate, POSITIVE, optional=True)
        require("timeout_s", self.timeout_s, POSITIVE, optional=True)
        require_seed("seed", self.seed, count=self.replica_count)
        check_framework(self.framework)
        if self.settings and self.modes:
            raise ParameterError(
                "modes", "compares modes; {settings} compares noise settings: not both"
            )
        if not self.settings and not self.modes:
            raise UsageError("grad-snr needs noise settings (or modes) to compare")
        if self.modes and self.replicas is not None:
            raise ParameterError("replicas", "only applies with {settings}, not with {modes}")
        workload = get_workload(self.framework, self.workload)
        workload.validate(self.workload_args, None)
        check_single_label(dataset_info(self.dataset), "analyze grad-snr")
        check_labels(workload, dataset_info(self.dataset))

    @property
    def replica_count(self) -> int:
        """Runs per noise setting (1 per mode when comparing modes)."""
        return (self.replicas or DEFAULT_REPLICAS) if self.settings else 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        data["settings"] = [s.name for s in self.settings]
        data["modes"] = [m.to_dict() for m in self.modes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradSnrSpec:
        """The inverse of `to_dict`."""
        return cls(
            **{
                **data,
                "settings": tuple(NOISE_SETTINGS[s] for s in data["settings"]),
                "modes": tuple(Mode.from_dict(m) for m in data["modes"]),
            }
        )


def plan_runs(spec: GradSnrSpec) -> list[GradSnrRun]:
    """The runs in order: per setting its replicas (seeds as `variability` draws them), or
    one run per mode with init and data seed `seed`."""
    if spec.modes:
        return [GradSnrRun(None, mode, 0, spec.seed, spec.seed) for mode in spec.modes]
    runs = []
    for setting in spec.settings:
        mode = MODES["deterministic" if setting.deterministic_kernels else "default"]
        for replica in range(spec.replica_count):
            init_seed, data_seed = replica_seeds(setting, replica, spec.seed)
            runs.append(GradSnrRun(setting.name, mode, replica, init_seed, data_seed))
    return runs


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


def _ratio(noise: float, sampling: float) -> float:
    """noise / sampling; 0 when both are 0, inf when only the sampling noise is."""
    if not np.isfinite(noise):
        return float("nan")
    return noise / sampling if sampling > 0 else (0.0 if noise == 0 else float("inf"))


def layer_row(
    layer: str, snr: np.ndarray, sampling_std: np.ndarray, impl_diff: np.ndarray
) -> dict[str, Any]:
    """One run's row for one layer from per-weight SNR, sampling std and impl. difference."""
    sampling = float(np.linalg.norm(sampling_std))
    impl = float(np.linalg.norm(impl_diff))
    return {
        "layer": layer,
        "n_weights": int(snr.size),
        "snr_median": float(np.median(snr)),
        "share_snr_below_1": float(np.mean(snr < 1)),
        "sampling_std_l2": sampling,
        "impl_diff_l2": impl,
        "impl_max_abs_diff": float(np.max(np.abs(impl_diff))) if impl_diff.size else 0.0,
        "impl_to_sampling": _ratio(impl, sampling),
    }


def measure(spec: GradSnrSpec, run: GradSnrRun) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Train, then measure in this process (mode already set): (layer rows, first gradient).

    The first gradient is the first minibatch's, all layers in one float32 vector.
    """
    from nnr_profile.studies.analysis import open_analysis

    model, dataset, workload = open_analysis(
        spec.framework,
        spec.workload,
        spec.dataset,
        spec.data_dir,
        run.mode,
        spec.gpu_index,
        run.init_seed,
        spec.workload_args,
    )
    if spec.batches * spec.batch_size > model.n_train:
        raise UsageError(
            f"{spec.batches} batches of {spec.batch_size} need {spec.batches * spec.batch_size} "
            f"training examples; {dataset.name} has {model.n_train}: lower --batches"
        )
    if spec.epochs:
        args = workload.validate(spec.workload_args, None)
        check_batches(workload, args, spec.batch_size, model.n_train)
        rate = spec.learning_rate or workload.learning_rate
        model.train(spec.epochs, spec.batch_size, rate, run.data_seed)
    order = np.random.default_rng(spec.seed).permutation(model.n_train)

    def gradient(batch: int) -> list[np.ndarray]:
        index = order[batch * spec.batch_size : (batch + 1) * spec.batch_size]
        return model.gradient(index, spec.seed + batch)

    first = gradient(0)
    sums = [g.copy() for g in first]
    sumsq = [g * g for g in first]
    for batch in range(1, spec.batches):
        for i, g in enumerate(gradient(batch)):
            sums[i] += g
            sumsq[i] += g * g
    again = gradient(0)
    rows = []
    for i, name in enumerate(model.names):
        snr, sampling = snr_summary(sums[i], sumsq[i], spec.batches)
        rows.append(layer_row(name, snr, sampling, first[i] - again[i]))
    return rows, np.concatenate(first).astype(np.float32)


@dataclass
class Measured:
    """What one run gave: its per-layer rows and (comparing settings) its first gradient, or
    its status and error when it failed, crashed or timed out."""

    run: GradSnrRun
    rows: list[dict[str, Any]]
    gradient: np.ndarray | None = None
    status: str = STATUS_OK
    error: str | None = None

    @property
    def where(self) -> str:
        """The run in words: its setting and replica, or its mode."""
        run = self.run
        return f"{run.group} replica {run.replica}" if run.setting else f"mode {run.group}"


@dataclass
class GradSnrOutcome:
    """The table of the runs that succeeded, and the runs that did not (errors as values)."""

    table: pd.DataFrame
    failed: list[Measured] = field(default_factory=list)


def _group_rows(framework: str, measured: list[Measured]) -> list[dict[str, Any]]:
    """The table rows of one group (a setting's replicas, or one mode's run)."""
    first = measured[0]
    gradients = [m.gradient for m in measured]
    stacked = (
        np.stack(gradients) if len(measured) > 1 and all(g is not None for g in gradients) else None
    )
    rows, offset = [], 0
    for i, layer_info in enumerate(first.rows):
        per_run = pd.DataFrame([m.rows[i] for m in measured])
        size = int(layer_info["n_weights"])
        sampling = float(per_run["sampling_std_l2"].mean())
        replica = float("nan")
        if stacked is not None:
            replica = float(
                np.linalg.norm(np.std(stacked[:, offset : offset + size], axis=0, ddof=1))
            )
        offset += size
        rows.append(
            {
                "framework": framework,
                "setting": first.run.setting,
                "mode": first.run.mode.name,
                "replicas": len(measured),
                "layer": layer_info["layer"],
                "n_weights": size,
                "snr_median": float(per_run["snr_median"].mean()),
                "share_snr_below_1": float(per_run["share_snr_below_1"].mean()),
                "sampling_std_l2": sampling,
                "impl_diff_l2": float(per_run["impl_diff_l2"].mean()),
                "impl_max_abs_diff": float(per_run["impl_max_abs_diff"].max()),
                "impl_to_sampling": float(per_run["impl_to_sampling"].mean()),
                "replica_std_l2": replica,
                "replica_to_sampling": _ratio(replica, sampling),
            }
        )
    return rows


def grad_snr_table(framework: str, measured: list[Measured]) -> pd.DataFrame:
    """GRAD_SNR_COLUMNS, one row per (setting or mode, layer), groups in the order measured.

    Per layer and group: snr_median, share_snr_below_1, sampling_std_l2, impl_diff_l2 and
    impl_to_sampling are means over the group's runs, impl_max_abs_diff the largest;
    replica_std_l2 is the L2 norm of the per-weight std over replicas (ddof=1) of the first
    minibatch's gradient, replica_to_sampling that over the mean sampling_std_l2 (NaN with
    one run per group).
    """
    groups: dict[str, list[Measured]] = {}
    for item in measured:
        groups.setdefault(item.run.group, []).append(item)
    rows = [row for items in groups.values() for row in _group_rows(framework, items)]
    return pd.DataFrame(rows, columns=GRAD_SNR_COLUMNS)


@child_task()
def measure_task(payload: dict[str, Any]) -> dict[str, Any]:
    """The child task of one run: {rows, gradient} (the gradient only when comparing settings)."""
    spec = GradSnrSpec.from_dict(payload["spec"])
    rows, gradient = measure(spec, GradSnrRun.from_dict(payload["run"]))
    return {"rows": rows, "gradient": gradient if spec.settings else None}


def launch_measure(spec: GradSnrSpec, run: GradSnrRun) -> Measured:
    """One run in its own process; a failure, crash or timeout comes back as a failed value."""
    env = child_environment(spec.framework, spec.workload, run.mode, spec.gpu_index, run.init_seed)
    payload = {"spec": spec.to_dict(), "run": run.to_dict()}
    outcome = spawn_child(measure_task, payload, env, spec.timeout_s)
    if outcome.status != STATUS_OK or outcome.result is None:
        return Measured(run, [], status=outcome.status, error=outcome.error)
    return Measured(run, outcome.result["rows"], outcome.result.get("gradient"))


def measure_grad_snr(
    spec: GradSnrSpec,
    on_run: Callable[[Measured], None] | None = None,
    launch: Callable[[GradSnrSpec, GradSnrRun], Measured] = launch_measure,
) -> GradSnrOutcome:
    """Measure every planned run in its own process: `grad_snr_table` of the runs that
    succeeded, and the failed runs. `on_run(measured)` follows each run."""
    measured, failed = [], []
    for run in plan_runs(spec):
        item = launch(spec, run)
        (measured if item.status == STATUS_OK else failed).append(item)
        if on_run:
            on_run(item)
    return GradSnrOutcome(grad_snr_table(spec.framework, measured), failed)


def run_grad_snr(
    spec: GradSnrSpec, on_run: Callable[[GradSnrRun], None] | None = None
) -> pd.DataFrame:
    """`measure_grad_snr`'s table for a caller that wants every run: an NnrError naming the
    first failed run otherwise. `on_run(run)` follows each run that succeeded."""

    def measured(item: Measured) -> None:
        if on_run and item.status == STATUS_OK:
            on_run(item.run)

    outcome = measure_grad_snr(spec, measured)
    if outcome.failed:
        first = outcome.failed[0]
        raise NnrError(f"grad-snr in {first.where} {first.status}: {first.error}")
    return outcome.table
