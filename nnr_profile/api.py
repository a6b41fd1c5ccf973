"""The Python API for notebooks: a results store's rows and report tables as DataFrames.

    from nnr_profile.api import open_store

    with open_store("nnr-results/nnr.db") as results:   # or a folder of shards
        overhead = results.overhead()

Every table is the one `nnr-profile report` writes (the registry `REPORT_TABLES` of
`nnr_profile.reports.report`), built by the same pure functions, so a notebook and the report
never disagree. The store is opened read-only; a folder of shards is merged into a temporary
store first.
"""

from __future__ import annotations

import weakref
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from nnr_profile.core.errors import NnrError
from nnr_profile.reports.load import ReportInputs, load_inputs
from nnr_profile.reports.report import REPORT_TABLES
from nnr_profile.store.merge import open_results

__all__ = ["Results", "open_store"]


class Results:
    """An open results store: raw rows (`trials`, `iterations`) and report tables (`table`).

    Use it as a context manager, or call `close` when done.
    """

    def __init__(self, path: str | Path, check: bool | None = None) -> None:
        self.path = Path(path)
        self._stack = ExitStack()
        self._store = self._stack.enter_context(open_results(self.path, check=check))
        self._inputs: ReportInputs | None = None
        weakref.finalize(self, self._stack.close)

    def close(self) -> None:
        """Close the store (and remove the temporary merge of a folder of shards)."""
        self._stack.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def trials(self) -> pd.DataFrame:
        """Every trial, one row each, failed ones included (columns of the ``trials`` table)."""
        return self._store.trials()

    def iterations(self) -> pd.DataFrame:
        """Every timed iteration of successful trials: trial columns, iteration, time_ms, loss.

        Values as stored: a hand-edited time is not checked here (the tables leave it out).
        """
        return self._store.iterations()

    def table_names(self) -> list[str]:
        """Names of the report tables `table` builds, in report order."""
        return list(REPORT_TABLES)

    def table(self, name: str) -> pd.DataFrame:
        """The report table `name` (see `table_names`); empty when the store has no data for it."""
        if name not in REPORT_TABLES:
            raise NnrError(f"no report table {name!r}: name one of {', '.join(REPORT_TABLES)}")
        if self._inputs is None:
            self._inputs = load_inputs(self._store)
        table = REPORT_TABLES[name].build(self._inputs)
        return pd.DataFrame() if table is None else table

    def overhead(self) -> pd.DataFrame:
        """Overhead of each mode over its baseline per workload and device: ratio with a CI."""
        return self.table("overhead")

    def kernels(self) -> pd.DataFrame:
        """Per group, mode and kernel: calls and ms per timed iteration (kernel collectors)."""
        return self.table("kernels")

    def variability(self) -> pd.DataFrame:
        """Per noise setting: accuracy spread, churn and weight distance across replicas."""
        return self.table("variability")


def open_store(path: str | Path, check: bool | None = None) -> Results:
    """Open the results store at `path` (a file, or a folder of shards) for reading.

    `check` runs SQLite's quick_check on it first (reads every page); None (the default) checks
    a store file of at most 256 MiB, as `report` does.
    """
    return Results(path, check=check)
