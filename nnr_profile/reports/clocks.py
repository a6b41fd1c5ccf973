"""Clock noise: trials whose GPU clocks dropped or throttled, named in a row's noisy reasons.

A trial's ``clock_noise`` (a ``trials`` column) is the text the device sampler's
`summarize_samples` wrote when the SM clock fell more than 5 % below its median or NVML
reported a throttle reason during the timed iterations; None when the clocks held or nothing
sampled them (the CPU). A report row whose baseline or mode trials have such a text is marked
noisy and its note names them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnr_profile.reports.overhead import GROUP_COLUMNS, group_keys

SHOWN = 3
"""Most trials named in one note; the rest are counted."""
CLOCK_COLUMNS = [*GROUP_COLUMNS, "mode", "clock_noise"]


def trial_column(per_trial: pd.DataFrame, trials: pd.DataFrame | None, name: str) -> pd.DataFrame:
    """`per_trial` with the `trials` column `name` joined by trial id (None where absent)."""
    values = None
    if trials is not None and not trials.empty and name in trials.columns:
        values = per_trial["trial_id"].map(trials.set_index("id")[name])
    return per_trial.assign(**{name: values})


def clock_noise_by_mode(per_trial: pd.DataFrame) -> pd.DataFrame:
    """Per cell and mode, one text naming its trials whose clocks dropped or throttled.

    `per_trial`: one row per trial with the cell columns (as the store has them), mode, repeat
    and clock_noise (text or None/NaN). Result CLOCK_COLUMNS, only cells and modes with such a
    trial: e.g. ``deterministic repeat 1 (SM clock dropped to 1200 MHz (median 1980))``.
    """
    if per_trial.empty or "clock_noise" not in per_trial.columns:
        return pd.DataFrame(columns=CLOCK_COLUMNS)
    text = per_trial["clock_noise"].astype(object).where(per_trial["clock_noise"].notna(), "")
    noisy = per_trial.loc[text.astype(str).str.strip() != ""]
    if noisy.empty:
        return pd.DataFrame(columns=CLOCK_COLUMNS)
    keyed = _table_keys(noisy)
    repeat = noisy["repeat"] if "repeat" in noisy.columns else noisy["trial_id"]
    keyed["_item"] = [
        f"{m} repeat {r} ({str(t).strip()})"
        for m, r, t in zip(keyed["mode"], repeat, noisy["clock_noise"], strict=True)
    ]
    grouped = keyed.groupby([*GROUP_COLUMNS, "mode"], sort=True, dropna=False)["_item"]
    return grouped.agg(_named).rename("clock_noise").reset_index()[CLOCK_COLUMNS]


def with_clock_noise(
    table: pd.DataFrame, by_mode: pd.DataFrame, baseline: str = "baseline_mode"
) -> pd.DataFrame:
    """`table` with `noisy` set and the note extended where the trials of its `baseline` column
    or its `mode` had clock noise (`by_mode` from `clock_noise_by_mode`)."""
    if by_mode.empty or table.empty:
        return table
    lookup = {
        _key(row[:-1]): row[-1]
        for row in by_mode[[*GROUP_COLUMNS, "mode", "clock_noise"]].itertuples(index=False)
    }
    cells = table[GROUP_COLUMNS].itertuples(index=False)
    texts = []
    for cell, first, second in zip(cells, table[baseline], table["mode"], strict=True):
        found = [lookup.get(_key((*cell, m))) for m in dict.fromkeys([first, second])]
        texts.append("; ".join(t for t in found if t))
    has = np.array([bool(t) for t in texts])
    out = table.copy()
    out["noisy"] = out["noisy"].astype(bool) | has
    out["note"] = [
        "; ".join(filter(None, [str(note or ""), f"clocks dropped or throttled: {t}" if t else ""]))
        for note, t in zip(out["note"], texts, strict=True)
    ]
    return out


def _named(items: pd.Series) -> str:
    shown = list(items)[:SHOWN]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more trial(s)" if more > 0 else "")


def _key(values: tuple) -> tuple:
    """A hashable cell key in which every missing value (NaN, None) is the same."""
    return tuple(None if pd.isna(v) else v for v in values)


def _table_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The cell columns as the report tables have them (device kind, image_size NaN if unset)."""
    keyed = group_keys(frame)
    keyed["image_size"] = keyed["image_size"].astype(float).replace(0, np.nan)
    return keyed[[*GROUP_COLUMNS, "mode"]].reset_index(drop=True)
