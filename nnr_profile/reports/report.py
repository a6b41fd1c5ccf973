"""`nnr-profile report`: the store -> overhead tables and figures in an output folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nnr_profile.errors import NnrError
from nnr_profile.reports.export import write_tables
from nnr_profile.reports.kernels import write_kernel_report
from nnr_profile.reports.overhead import failure_table, overhead_table
from nnr_profile.reports.plots import overhead_figure, save_figure
from nnr_profile.reports.store import Store


@dataclass
class Report:
    """What `write_report` produced: the overhead table and the files written."""

    overhead: pd.DataFrame
    failures: pd.DataFrame
    files: list[Path] = field(default_factory=list)


def write_report(db_path: str | Path, out_dir: str | Path) -> Report:
    """Read the store at `db_path` and write the report files into `out_dir`.

    overhead.{csv,md,tex,png,pdf} always; kernels.csv, attribution.csv and
    attribution.{png,pdf} when kernel collectors ran; failures.csv when trials failed.
    """
    with Store(db_path, create=False) as store:
        trials = store.trials()
        iterations = store.iterations()
        kernels = store.kernels()
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
    report.files += save_figure(overhead_figure(table), out / "overhead")
    if not kernels.empty:
        report.files += write_kernel_report(kernels, out)
    if not failures.empty:
        path = out / "failures.csv"
        failures.to_csv(path, index=False)
        report.files.append(path)
    return report
