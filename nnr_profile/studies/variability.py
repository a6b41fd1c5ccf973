"""Variability experiments: noise settings x replicas, each replica its own training process.

The study's noise settings say which sources of randomness are held fixed:

- ``algo+impl``: nothing fixed: init and data-order seeds vary per replica, kernels as the
  framework chooses (``default`` mode).
- ``algo``: only algorithmic noise: seeds vary, kernels deterministic.
- ``impl``: only implementation noise: seeds fixed, kernels as the framework chooses.
- ``control``: everything fixed: seeds fixed, kernels deterministic.

On the CPU, PyTorch's kernels are deterministic already, so ``impl`` is expected to look like
``control`` there: implementation noise is a GPU phenomenon (atomics, autotuned algorithms).

Replicas are stored in the results store and skipped when already done, like sweep cells;
several run at once (``jobs`` per device), each in its own process.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from operator import attrgetter
from pathlib import Path
from typing import Any

from nnr_profile.core.errors import ParameterError, UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.params import COUNT, POSITIVE, require, require_seed
from nnr_profile.profiler.runner.pool import Lane, RunOutcome, lane_queue, run_pool, skip_done
from nnr_profile.studies.replica import ReplicaResult, ReplicaSpec, launch_replica
from nnr_profile.workloads.checks import check_batches, check_labels
from nnr_profile.workloads.datasets import dataset_info, example_attributes
from nnr_profile.workloads.registry import get_workload


@dataclass(frozen=True)
class NoiseSetting:
    """Which randomness sources vary across replicas: seeds (init, data order) and kernels."""

    name: str
    vary_init: bool
    vary_data: bool
    deterministic_kernels: bool
    description: str = ""


NOISE_SETTINGS: dict[str, NoiseSetting] = {
    "algo+impl": NoiseSetting("algo+impl", True, True, False, "nothing fixed"),
    "algo": NoiseSetting("algo", True, True, True, "kernels deterministic; seeds vary"),
    "impl": NoiseSetting("impl", False, False, False, "seeds fixed; kernels free"),
    "control": NoiseSetting("control", False, False, True, "everything fixed"),
}

DATA_SEED_OFFSET = 100_000
"""Data-order seeds are drawn from a range apart from init seeds."""


def parse_settings(text: str) -> tuple[NoiseSetting, ...]:
    """Noise settings from a comma-separated list (order kept, repeats dropped)."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not names:
        raise ParameterError("settings", "is empty: give e.g. algo+impl,control")
    unknown = [n for n in names if n not in NOISE_SETTINGS]
    if unknown:
        raise UsageError(
            f"unknown noise setting(s) {', '.join(unknown)}: use {', '.join(NOISE_SETTINGS)}"
        )
    return tuple(NOISE_SETTINGS[n] for n in dict.fromkeys(names))


@dataclass(frozen=True)
class VariabilitySpec:
    """A variability study: one workload on one dataset, settings x replicas, how to train.

    `batch_size` / `learning_rate` None mean the workload's defaults; `jobs` is the number of
    replicas run at once on each device.
    """

    workload: str
    dataset: str
    settings: tuple[NoiseSetting, ...]
    framework: str = "torch"
    replicas: int = 10
    epochs: int = 30
    batch_size: int | None = None
    learning_rate: float | None = None
    devices: tuple[int | None, ...] = (None,)
    jobs: int = 1
    seed: int = 0
    data_dir: str | None = None
    workload_args: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = 6 * 3600.0

    def __post_init__(self) -> None:
        require("replicas", self.replicas, COUNT)
        require("epochs", self.epochs, COUNT)
        require("jobs", self.jobs, COUNT)
        require("batch_size", self.batch_size, COUNT, optional=True)
        require("learning_rate", self.learning_rate, POSITIVE, optional=True)
        require("timeout_s", self.timeout_s, POSITIVE, optional=True)
        require_seed("seed", self.seed, count=self.replicas)
        if not self.settings:
            raise UsageError("a variability study needs at least one noise setting")
        if self.framework not in ("torch", "tf"):
            raise ParameterError(
                "framework", "must be torch or tf, not {value!r}", value=self.framework
            )
        if not self.devices:
            raise UsageError("a variability study needs at least one device")
        dataset_info(self.dataset)


def replica_seeds(setting: NoiseSetting, replica: int, seed: int) -> tuple[int, int]:
    """(init_seed, data_seed) of replica number `replica` under `setting`."""
    init_seed = seed + replica if setting.vary_init else seed
    data_seed = DATA_SEED_OFFSET + seed + (replica if setting.vary_data else 0)
    return init_seed, data_seed


def plan_variability(spec: VariabilitySpec) -> list[ReplicaSpec]:
    """Replicas in run order: replica-major (r0 of every setting, then r1, ...), no device yet.

    Replica-major order means a study cut short still has comparable counts per setting.
    """
    workload = get_workload(spec.framework, spec.workload)
    args = workload.validate(spec.workload_args, None)
    check_labels(workload, dataset_info(spec.dataset))
    host = socket.gethostname()
    cells = []
    for replica in range(spec.replicas):
        for setting in spec.settings:
            init_seed, data_seed = replica_seeds(setting, replica, spec.seed)
            mode = MODES["deterministic" if setting.deterministic_kernels else "default"]
            cells.append(
                ReplicaSpec(
                    framework=spec.framework,
                    workload=spec.workload,
                    dataset=dataset_info(spec.dataset).name,
                    setting=setting.name,
                    replica=replica,
                    init_seed=init_seed,
                    data_seed=data_seed,
                    mode=mode,
                    epochs=spec.epochs,
                    batch_size=spec.batch_size or workload.default_batch_size,
                    learning_rate=spec.learning_rate or workload.learning_rate,
                    workload_args=args,
                    data_dir=spec.data_dir,
                    host=host,
                )
            )
    return cells


def run_variability(
    spec: VariabilitySpec,
    db_path: str | Path,
    force: bool = False,
    on_progress: Callable[[ReplicaSpec, ReplicaResult | None], None] | None = None,
    launch: Callable[[ReplicaSpec, float | None], ReplicaResult] = launch_replica,
    preset: str | None = None,
) -> RunOutcome:
    """Run every planned replica not yet stored; `jobs` worker threads per device.

    `on_progress(cell, result)` follows each replica; `result` is None for a skipped one;
    `preset` (the preset that planned the study) is recorded for its replicas, as `run` records
    it for its cells (`Store.mark_cells`). A missing dataset or an unusable store path is one
    clear error before any process starts.
    """
    from nnr_profile.core.paths import prepare_output_file
    from nnr_profile.store.database import Store
    from nnr_profile.workloads.datasets import training_examples

    cells = plan_variability(spec)
    examples = training_examples(spec.dataset, spec.data_dir)
    if cells:
        workload = get_workload(spec.framework, spec.workload)
        check_batches(workload, cells[0].workload_args, cells[0].batch_size, examples)
    prepare_output_file(db_path, "db")
    with Store(db_path) as store:
        done = set() if force else store.done_replicas()
        if preset is not None:
            store.mark_cells("preset", [cell.replica_key for cell in cells], preset)
        dataset = dataset_info(spec.dataset).name
        if not store.has_example_attributes(dataset):
            attributes = example_attributes(spec.dataset, spec.data_dir)
            if attributes is not None:
                store.record_example_attributes(dataset, attributes)
    outcome = RunOutcome()
    todo = lane_queue(skip_done(cells, done, attrgetter("replica_key"), outcome, on_progress))

    def run_one(cell: ReplicaSpec, device: int | None) -> ReplicaResult:
        return launch(replace(cell, gpu_index=device), spec.timeout_s)

    lanes = [Lane(device, todo) for device in spec.devices for _ in range(spec.jobs)]
    return run_pool(
        lanes,
        run_one,
        db_path,
        lambda store, result: store.record_replica(result),
        outcome,
        on_progress,
    )
