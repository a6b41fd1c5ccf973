"""`nnr-profile gate`: measure (or read) the paired A/B of one mode against a baseline, judge it.

`GateRequest` holds what the gate was asked (validated in `__post_init__`); `judge_store`
reads a store through the report's one overhead pipeline and judges the requested rows
(`reports.gate`), failing any row whose cell has failed trials; `run_gate` first measures the
sweep into `--db` through `studies.measure` unless the gate judges an existing store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nnr_profile.core.errors import NnrError, ParameterError
from nnr_profile.core.modes import BASELINE_MODES, parse_modes
from nnr_profile.core.params import Range, require
from nnr_profile.core.paths import prepare_output_dir
from nnr_profile.profiler.runner.launchers.base import Launcher
from nnr_profile.reports.gate import gate_document, gated_failures, judge, select_rows, write_gate
from nnr_profile.reports.kernels import attribution_table
from nnr_profile.reports.load import timing_inputs
from nnr_profile.reports.overhead_report import overhead_rows
from nnr_profile.store.merge import open_results
from nnr_profile.studies.measure import Measurement, ProgressBar, measure, plan_measurement
from nnr_profile.studies.precision import PrecisionTarget


@dataclass(frozen=True)
class GateRequest:
    """What to gate: `mode` against `baseline` for `model` (None with `from_db`: every model
    in that store), at most `max_ratio`; trial sizes as `SweepSpec` fields."""

    model: str | None
    framework: str
    baseline: str
    mode: str
    max_ratio: float
    out: str | Path
    from_db: str | Path | None = None
    sizes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require("max_ratio", self.max_ratio, Range(min=0, min_open=True))
        if self.baseline not in BASELINE_MODES:
            raise ParameterError(
                "baseline",
                "{value!r} is not a baseline mode: use default or fast",
                value=self.baseline,
            )
        gated = parse_modes(self.mode)
        if len(gated) != 1 or gated[0].name == self.baseline:
            raise ParameterError(
                "mode", "{value!r}: give one mode other than --baseline", value=self.mode
            )
        if self.model is None and self.from_db is None:
            raise ParameterError("model", "is needed to run the gate's trials: give one name")

    @property
    def modes(self) -> str:
        """Baseline and gated mode, as `--modes` takes them."""
        return f"{self.baseline},{self.mode}"


@dataclass
class GateOutcome:
    """The judged gate: its JSON document, the table behind it, files written, the sweep."""

    document: dict[str, Any]
    table: pd.DataFrame
    files: list[Path]
    measurement: Measurement | None = None

    @property
    def verdict(self) -> str:
        """pass, fail or inconclusive."""
        return self.document["verdict"]


def judge_store(
    request: GateRequest, store_path: str | Path, workloads: list[tuple[str, str]] | None
) -> GateOutcome:
    """Judge the rows of `request` in the store at `store_path` (file or shards) and write the
    gate's files; `workloads` None: every workload the store measured."""
    with open_results(store_path) as store:
        trials, per_trial, _ = timing_inputs(store)
        kernels = store.kernels()
    if trials.empty:
        raise NnrError(f"the store {store_path} holds no trials: run the gate without --from-db")
    if workloads is None:
        workloads = sorted(set(zip(trials["framework"], trials["workload"], strict=True)))
    sizes = request.sizes
    rows = select_rows(
        overhead_rows(per_trial, trials),
        workloads,
        request.baseline,
        request.mode,
        sizes.get("batch_size"),
        sizes.get("image_size"),
        sizes.get("workload_args"),
    )
    if rows.empty:
        raise NnrError(
            f"the store {store_path} has no {request.mode} vs {request.baseline} comparison "
            f"for {request.model or 'any model'} ({request.framework}): run the gate without "
            "--from-db, or check --model, --framework, --batch-size and --image-size"
        )
    table = judge(rows, request.max_ratio, gated_failures(trials, rows))
    settings = {
        "max_ratio": request.max_ratio,
        "baseline": request.baseline,
        "mode": request.mode,
        "store": str(store_path),
    }
    document = gate_document(table, attribution_table(kernels), settings)
    files = write_gate(document, table, prepare_output_dir(request.out, "out"))
    return GateOutcome(document, table, files)


def run_gate(
    request: GateRequest,
    db: str | Path,
    launcher: Launcher,
    progress: ProgressBar,
    target: PrecisionTarget | None = None,
    force: bool = False,
    on_note: Callable[[str], None] = print,
) -> GateOutcome:
    """Measure the gate's paired A/B into `db` through `launcher` (unless `from_db`), then judge
    it (`judge_store`); `on_note` gets the sweep's notes before it runs."""
    if request.from_db is not None:
        return judge_store(request, request.from_db, _workloads(request))
    planned = plan_measurement(
        request.model, request.framework, request.modes, launcher, **request.sizes
    )
    if len(planned.spec.workloads) != 1 and request.framework != "all":
        raise ParameterError("model", "gate checks one model: give one name")
    prepare_output_dir(request.out, "out")
    measurement = measure(planned, db, launcher, progress, target, force, on_note)
    outcome = judge_store(request, db, list(planned.spec.workloads))
    outcome.measurement = measurement
    return outcome


def _workloads(request: GateRequest) -> list[tuple[str, str]] | None:
    """The (framework, workload) pairs a `--from-db` gate judges (None: all in the store)."""
    if request.model is None:
        return None
    from nnr_profile.workloads.selection import select_workloads

    return list(select_workloads(request.model, request.framework).workloads)
