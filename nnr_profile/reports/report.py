"""`nnr-profile report`: the store -> overhead tables and figures in an output folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nnr_profile.core.errors import NnrError
from nnr_profile.reports.export import write_tables
from nnr_profile.reports.kernels import write_kernel_report
from nnr_profile.reports.overhead import failure_table, framework_notes, overhead_table
from nnr_profile.reports.plots import overhead_figure, save_figure
from nnr_profile.store.merge import open_results


@dataclass
class Report:
    """What `write_report` produced: the overhead table and the files written."""

    overhead: pd.DataFrame
    failures: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    variability: pd.DataFrame | None = None
    per_class: pd.DataFrame | None = None
    subgroups: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def write_report(db_path: str | Path, out_dir: str | Path) -> Report:
    """Read the store at `db_path` and write the report files into `out_dir`.

    overhead.{csv,md,tex,png,pdf} always; kernels.csv, attribution.csv and
    attribution.{png,pdf} when kernel collectors ran; failures.csv when trials failed.
    """
    with open_results(db_path) as store:
        trials = store.trials()
        iterations = store.iterations()
        kernels = store.kernels()
        replicas = store.replicas()
        predictions = store.predictions()
        weights = store.replica_weights(replicas.loc[replicas["status"] == "ok", "id"])
        attributes = store.example_attributes()
    variability = (replicas, predictions, weights, attributes)
    if trials.empty and not replicas.empty:
        return _write_variability(variability, out_dir, Report(pd.DataFrame(), trials))
    if trials.empty:
        raise NnrError(f"the store {db_path} holds no trials yet: run 'nnr-profile run' first")
    timing_trials = trials[trials["collector"] == "timing"]
    table = overhead_table(iterations[iterations["collector"] == "timing"], timing_trials)
    failures = failure_table(trials)
    if table.empty:
        raise NnrError(
            f"the store {db_path} has {len(trials)} trial(s) but no comparison to make: it needs "
            "successful trials of a baseline mode (default or fast) and another mode for the "
            f"same workload and device ({len(failures)} trial(s) failed; see 'nnr-profile run')"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(table, failures)
    report.files += write_tables(table, out / "overhead")
    report.notes = framework_notes(table)
    if report.notes:
        with open(out / "overhead.md", "a", encoding="utf-8") as handle:
            handle.writelines(f"\nNote: {note}\n" for note in report.notes)
    report.files += save_figure(overhead_figure(table), out / "overhead")
    if not kernels.empty:
        report.files += write_kernel_report(kernels, out)
    if not failures.empty:
        path = out / "failures.csv"
        failures.to_csv(path, index=False)
        report.files.append(path)
    if not replicas.empty:
        _write_variability(variability, out, report)
    return report


def _write_variability(
    data: tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame],
    out_dir: str | Path,
    report: Report,
) -> Report:
    """Add variability.csv, per_class.csv, subgroups.csv (CelebA) and figures.

    `data` is (replicas, predictions, weights, example attributes) as the store returns them.
    """
    from nnr_profile.reports.variability import (
        accuracy_points,
        per_class_table,
        subgroup_table,
        variability_table,
    )
    from nnr_profile.reports.variability_plots import (
        accuracy_strip_figure,
        per_class_std_figure,
        subgroup_rates_figure,
    )

    replicas, predictions, weights, attributes = data
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.variability = variability_table(replicas, predictions, weights)
    report.per_class = per_class_table(replicas, predictions)
    for name, table in (("variability", report.variability), ("per_class", report.per_class)):
        path = out / f"{name}.csv"
        table.to_csv(path, index=False)
        report.files.append(path)
    points = accuracy_points(replicas)
    if not points.empty:
        report.files += save_figure(accuracy_strip_figure(points), out / "variability_accuracy")
    if not report.per_class.empty:
        report.files += save_figure(per_class_std_figure(report.per_class), out / "per_class_std")
    report.subgroups = subgroup_table(replicas, predictions, attributes)
    if not report.subgroups.empty:
        path = out / "subgroups.csv"
        report.subgroups.to_csv(path, index=False)
        report.files.append(path)
        report.files += save_figure(subgroup_rates_figure(report.subgroups), out / "subgroup_rates")
    failed = replicas[replicas["status"] != "ok"]
    if not failed.empty:
        path = out / "replica_failures.csv"
        failed[["workload", "dataset", "setting", "replica", "device", "status", "error"]].to_csv(
            path, index=False
        )
        report.files.append(path)
    return report
