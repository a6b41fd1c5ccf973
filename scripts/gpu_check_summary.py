"""Print the summary of scripts/gpu-check.sh: steps, overhead, ladder, kernels, trial overhead.

python scripts/gpu_check_summary.py gpu-check
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from nnr_profile.api import open_store

OVERHEAD_COLUMNS = (
    "framework",
    "workload",
    "workload_args",
    "gpu_name",
    "baseline_mode",
    "mode",
    "baseline_median_ms",
    "median_ms",
    "ratio",
    "overhead_pct",
    "ci_low_pct",
    "ci_high_pct",
    "n_trials",
    "noisy",
    "preset",
)
LADDER_COLUMNS = (
    "workload",
    "gpu_name",
    "step",
    "mode",
    "step_label",
    "step_ratio",
    "step_ci_low_pct",
    "step_ci_high_pct",
    "step_p_holm",
    "ratio",
    "n_pairs",
)


def markdown(table: pd.DataFrame, digits: str = ".2f") -> str:
    """A table as Markdown (no index)."""
    return table.to_markdown(index=False, floatfmt=digits)


def overhead(report: Path) -> str | None:
    """Each mode against `default`, the columns a reader compares with the study."""
    path = report / "overhead.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    if "baseline_mode" in table:
        table = table[table["baseline_mode"] == "default"]
    return markdown(table[[c for c in OVERHEAD_COLUMNS if c in table]])


def ladder(report: Path) -> str | None:
    """The ladders run (workloads with more than one step): each step over the one before."""
    path = report / "ladder.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    cell = [
        c
        for c in ("framework", "workload", "workload_args", "batch_size", "image_size")
        if c in table
    ]
    table = table[table.groupby(cell, dropna=False)["step"].transform("max") > 1]
    return markdown(table[[c for c in LADDER_COLUMNS if c in table]])


def top_kernel_deltas(report: Path, rows: int = 10) -> str | None:
    """The kernels whose time per iteration changed most between default and deterministic."""
    path = report / "attribution.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    column = "delta_ms_per_iter"
    if column not in table:
        return None
    order = table[column].abs().sort_values(ascending=False).index
    return markdown(table.reindex(order).head(rows), ".4f")


def trial_overhead(db: Path) -> str | None:
    """Per workload: the seconds of a trial process spent outside its timed iterations."""
    if not db.exists():
        return None
    with open_store(db) as results:
        trials = results.trials()
        iterations = results.iterations()
    trials = trials[(trials["status"] == "ok") & (trials["collector"] == "timing")]
    if trials.empty:
        return None
    timed_s = iterations.groupby("trial_id")["time_ms"].sum() / 1000.0
    trials = trials.assign(timed_s=trials["id"].map(timed_s).fillna(0.0))
    trials = trials.assign(outside_s=trials["wall_s"] - trials["timed_s"])
    table = trials.groupby(["framework", "workload"], as_index=False).agg(
        trials=("id", "size"),
        median_wall_s=("wall_s", "median"),
        median_timed_s=("timed_s", "median"),
        median_outside_s=("outside_s", "median"),
    )
    table["timed_share_pct"] = 100.0 * table["median_timed_s"] / table["median_wall_s"]
    return markdown(table)


def main(folder: str) -> int:
    """Print every part of the summary that the check produced."""
    out = Path(folder)
    print("\nsteps (exit status, seconds):")
    print((out / "steps.txt").read_text(encoding="utf-8"))
    report = out / "report"
    parts = {
        "overhead against default (paired ratio, 95 % CI):": overhead(report),
        "knob ladder:": ladder(report),
        "top kernel deltas (deterministic vs default):": top_kernel_deltas(report),
        "per-trial overhead (wall_s is the trial process's own, after its interpreter "
        "started or its fork; the whole cost per trial, cold vs warm, follows):": trial_overhead(
            out / "nnr.db"
        ),
    }
    for title, text in parts.items():
        print(f"\n{title}")
        print(text if text is not None else "(not produced: see check.log)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "gpu-check"))
