"""What the report tables are built from, read once from the store, with values checked.

Iteration times are read as (trial_id, iteration, time_ms) only and reduced to one row per
trial at once, so a store of millions of iterations reports in seconds and little memory. A
time that is not a positive finite number (a hand-edited 'abc', 0, -5) is left out and named
in `ReportInputs.skipped`, never turned into a traceback or a figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nnr_profile.core.specs import STATUS_OK
from nnr_profile.reports.stats import trial_summary
from nnr_profile.store.database import Store

SKIPPED_COLUMNS = ["trial_id", "iteration", "time_ms", "reason"]
CELL_COLUMNS = [
    "framework",
    "workload",
    "workload_args",
    "batch_size",
    "image_size",
    "device",
    "host",
    "gpu_arch",
    "gpu_name",
]
"""The cell a trial ran in, as the ``trials`` table stores it (its host included)."""

TIMES_SQL = """SELECT i.trial_id, i.iteration, i.time_ms FROM iterations i
               JOIN trials t ON t.id = i.trial_id
               WHERE t.status = ? AND t.collector = 'timing'"""


@dataclass
class ReportInputs:
    """The store's contents as the report tables need them.

    trials: every trial (the ``trials`` table); per_trial: one row per successful timing trial
    with its cell columns, repeat, host and median_ms / iqr_ratio / n_iterations (see
    `trial_summary`); skipped: iteration rows left out (SKIPPED_COLUMNS); kernels, replicas,
    predictions, weights, attributes, op_probes: as the store returns them.
    """

    trials: pd.DataFrame
    per_trial: pd.DataFrame
    skipped: pd.DataFrame
    kernels: pd.DataFrame = field(default_factory=pd.DataFrame)
    replicas: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    weights: dict = field(default_factory=dict)
    attributes: pd.DataFrame = field(default_factory=pd.DataFrame)
    op_probes: pd.DataFrame = field(default_factory=pd.DataFrame)


def check_times(times: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split iteration rows into usable ones and the ones left out (with the reason).

    `times` has trial_id, iteration, time_ms (any dtype, as read). Usable: time_ms is a
    positive finite number. Returns (usable rows with float time_ms, SKIPPED_COLUMNS rows).
    """
    values = pd.to_numeric(times["time_ms"], errors="coerce").astype(float)
    good = np.isfinite(values.to_numpy()) & (values.to_numpy() > 0)
    if good.all():
        return times.assign(time_ms=values), pd.DataFrame(columns=SKIPPED_COLUMNS)
    bad = times.loc[~good, ["trial_id", "iteration", "time_ms"]].copy()
    numeric = values[~good]
    bad["reason"] = np.where(
        numeric.isna(),
        "not a number",
        np.where(np.isfinite(numeric), "not positive", "not finite"),
    )
    bad["time_ms"] = bad["time_ms"].astype(str)
    return times.loc[good].assign(time_ms=values[good]), bad.reset_index(drop=True)


def per_trial_frame(trials: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """Successful timing trials' columns joined to `trial_summary` of their usable `times`."""
    summary = trial_summary(times)
    ok = trials[(trials["status"] == STATUS_OK) & (trials["collector"] == "timing")]
    meta = ok[["id", *CELL_COLUMNS, "mode", "repeat"]].rename(columns={"id": "trial_id"})
    return meta.merge(summary, on="trial_id", how="inner")


def skipped_note(skipped: pd.DataFrame, shown: int = 3) -> str | None:
    """One line naming the iteration rows left out ('trial 12 iteration 5: 'abc' not a number')."""
    if skipped.empty:
        return None
    named = "; ".join(
        f"trial {t} iteration {i}: {v!r} {r}"
        for t, i, v, r in skipped.head(shown).itertuples(index=False)
    )
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (
        f"{len(skipped)} iteration time(s) left out as not a positive number ({named}{more}); "
        "see skipped_iterations.csv"
    )


def load_inputs(store: Store) -> ReportInputs:
    """Read everything the report needs from an open store (read-only queries)."""
    trials = store.trials()
    times = store.query(TIMES_SQL, (STATUS_OK,))
    usable, skipped = check_times(times)
    del times
    per_trial = per_trial_frame(trials, usable[["trial_id", "time_ms"]])
    replicas = store.replicas()
    ok = replicas.loc[replicas["status"] == STATUS_OK, "id"] if not replicas.empty else []
    return ReportInputs(
        trials=trials,
        per_trial=per_trial,
        skipped=skipped,
        kernels=store.kernels(),
        replicas=replicas,
        predictions=store.predictions(),
        weights=store.replica_weights(ok),
        attributes=store.example_attributes(),
        op_probes=store.op_probes(),
    )
