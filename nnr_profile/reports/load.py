"""What the report tables are built from, read once from the store, with values checked.

Iteration times are read as (trial_id, iteration, time_ms, the trial's wall_s) only
(`Store.timing_times`) and reduced to one row per trial at once, so a store of millions of
iterations reports in seconds and little memory. A time that is not a positive finite number (a
hand-edited 'abc', 0, -5) or that is longer than its whole trial took (impossible: a 1e12 ms
iteration in a trial of 40 s) is left out and named in `ReportInputs.skipped`, never turned
into a traceback or a figure. `TimingReader` does the same incrementally, for precision on
demand, which re-reads the store after every round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class ReportInputs:
    """The store's contents as the report tables need them.

    trials: every trial (the ``trials`` table); per_trial: one row per successful timing trial
    with its cell columns, repeat, host and median_ms / iqr_ratio / n_iterations (see
    `trial_summary`); skipped: iteration rows left out (SKIPPED_COLUMNS); kernels, replicas,
    predictions, weights, non_trainable_weights (BatchNorm statistics), outputs (multi-label
    replicas' 0/1 matrices), attributes, op_probes: as the store returns them.
    """

    trials: pd.DataFrame
    per_trial: pd.DataFrame
    skipped: pd.DataFrame
    kernels: pd.DataFrame = field(default_factory=pd.DataFrame)
    replicas: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    weights: dict = field(default_factory=dict)
    non_trainable_weights: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    attributes: pd.DataFrame = field(default_factory=pd.DataFrame)
    op_probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    checked: bool = True
    """Whether the store passed SQLite's quick_check when it was read."""


def check_times(times: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split iteration rows into usable ones and the ones left out (with the reason).

    `times` has trial_id, iteration, time_ms (any dtype, as read) and optionally wall_s, the
    trial's wall time in seconds. Usable: time_ms is a positive finite number, no longer than
    the trial's wall time where that is known. Returns (usable rows with float time_ms,
    SKIPPED_COLUMNS rows).
    """
    values = pd.to_numeric(times["time_ms"], errors="coerce").astype(float).to_numpy()
    wall_ms = _wall_ms(times)
    finite = np.isfinite(values)
    positive = finite & (values > 0)
    possible = ~(positive & (values > wall_ms))
    good = positive & possible
    if good.all():
        return times.assign(time_ms=values), pd.DataFrame(columns=SKIPPED_COLUMNS)
    bad = times.loc[~good, ["trial_id", "iteration", "time_ms"]].copy()
    reasons = np.select(
        [np.isnan(values), ~finite, ~positive],
        ["not a number", "not finite", "not positive"],
        default="longer than its trial's wall time",
    )
    bad["reason"] = reasons[~good]
    bad["time_ms"] = bad["time_ms"].astype(str)
    return times.loc[good].assign(time_ms=values[good]), bad.reset_index(drop=True)


def _wall_ms(times: pd.DataFrame) -> np.ndarray:
    """Each row's trial wall time in ms (inf where unknown or not a positive number)."""
    if "wall_s" not in times.columns:
        return np.full(len(times), np.inf)
    wall = pd.to_numeric(times["wall_s"], errors="coerce").astype(float).to_numpy() * 1000
    return np.where(np.isfinite(wall) & (wall > 0), wall, np.inf)


def per_trial_frame(trials: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """Successful timing trials' columns joined to `trial_summary` of their usable `times`."""
    ok = trials[(trials["status"] == STATUS_OK) & (trials["collector"] == "timing")]
    return _joined(ok, trial_summary(times))


def _joined(ok: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The cell columns, mode and repeat of the trials `ok` joined to their summary rows."""
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
        f"{len(skipped)} iteration time(s) left out as unusable ({named}{more}); "
        "see skipped_iterations.csv"
    )


def unchecked_note(store: str | Path) -> str:
    """The line saying a store was read without a damage check (it was too large to check)."""
    return (
        f"the store {store} is large and was read without a damage check: "
        "'report --check' runs SQLite's quick_check first"
    )


def timing_inputs(store: Store) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(trials, per_trial, skipped) of an open store: every trial, one checked summary row per
    successful timing trial (`per_trial_frame`), and the iteration rows left out."""
    trials = store.trials()
    usable, skipped = check_times(store.timing_times())
    return trials, per_trial_frame(trials, usable[["trial_id", "time_ms"]]), skipped


class TimingReader:
    """Per-trial summaries read incrementally: each `read` reads only trials not seen before.

    For precision on demand, which needs the overhead table of the same store after every
    round: the summaries (and skipped rows) of trials already read are kept, so a round costs
    the iterations of its new trials only. Trials are identified by id; a trial re-run in
    place gets a new id, so its new times are read.
    """

    def __init__(self) -> None:
        self._summaries = pd.DataFrame()
        self._skipped: list[pd.DataFrame] = []
        self._seen: set[int] = set()

    def read(self, store: Store, trials: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(per_trial, skipped) for `trials` (rows of `store.trials()`), as `timing_inputs`."""
        ok = trials[(trials["status"] == STATUS_OK) & (trials["collector"] == "timing")]
        new = [int(i) for i in ok["id"] if int(i) not in self._seen]
        if new:
            usable, skipped = check_times(store.timing_times(new))
            self._summaries = pd.concat(
                [self._summaries, trial_summary(usable[["trial_id", "time_ms"]])],
                ignore_index=True,
            )
            self._skipped.append(skipped)
            self._seen.update(new)
        summaries = self._summaries
        if summaries.empty:
            summaries = trial_summary(pd.DataFrame({"trial_id": [], "time_ms": []}))
        per_trial = _joined(ok, summaries[summaries["trial_id"].isin(ok["id"])])
        skipped = pd.concat([pd.DataFrame(columns=SKIPPED_COLUMNS), *self._skipped])
        return per_trial, skipped[skipped["trial_id"].isin(ok["id"])].reset_index(drop=True)


def load_inputs(store: Store) -> ReportInputs:
    """Read everything the report needs from an open store (read-only queries)."""
    trials, per_trial, skipped = timing_inputs(store)
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
        non_trainable_weights=store.replica_weights(ok, non_trainable=True),
        outputs=store.replica_outputs(ok),
        attributes=store.example_attributes(),
        op_probes=store.op_probes(),
        checked=store.checked,
    )
