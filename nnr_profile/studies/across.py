"""`verify --across A.db B.db ...`: does one spec train the same on other GPUs and versions?

Every successful timing trial in the stores (merged or not; a trial found in two of them
counts once) is grouped by its spec (framework, workload, arguments, mode, sizes, warm-up,
iterations, seed) and by its environment: (GPU architecture, framework version), read from
the stored fingerprint. Per spec, every pair of environments is compared on one trial each:
the per-iteration losses bit for bit and the final weights hash. The diagonal compares the
trials of one environment among themselves (repeats, machines of the same kind).
Iterations are counted from the start of training (the stored ones follow the warm-up).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nnr_profile.core.errors import NnrError
from nnr_profile.core.specs import STATUS_OK

SPEC_COLUMNS = [
    "framework",
    "workload",
    "workload_args",
    "mode",
    "batch_size",
    "image_size",
    "warmup",
    "iterations",
    "seed",
]
ENV_COLUMNS = ["gpu_arch", "framework_version"]
ACROSS_COLUMNS = [
    *SPEC_COLUMNS,
    "env_a",
    "env_b",
    "trials_a",
    "trials_b",
    "losses_equal",
    "weights_equal",
    "reproducible",
    "first_divergent_iteration",
]


def load_trials(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Successful timing trials of every store: spec and environment columns, host,
    weights_hash and `losses` (a list of floats per trial, in iteration order)."""
    from nnr_profile.store.merge import open_results
    from nnr_profile.store.versions import trial_versions

    frames = []
    for path in paths:
        with open_results(path) as store:
            trials = store.query(
                "SELECT id AS trial_id, cell_key, host, finished_at, gpu_arch, gpu_name, "
                f"weights_hash, {', '.join(SPEC_COLUMNS)} FROM trials "
                "WHERE status = ? AND collector = 'timing' ORDER BY id",
                (STATUS_OK,),
            )
            losses = store.query(
                "SELECT i.trial_id, i.iteration, i.loss FROM iterations i JOIN trials t "
                "ON t.id = i.trial_id WHERE t.status = ? AND t.collector = 'timing' "
                "ORDER BY i.trial_id, i.iteration",
                (STATUS_OK,),
            )
            versions = trial_versions(store)
        per_trial = losses.groupby("trial_id")["loss"].agg(list).rename("losses")
        trials = trials.merge(per_trial, left_on="trial_id", right_index=True, how="left")
        trials = trials.merge(versions[["trial_id", "framework_version"]], on="trial_id")
        frames.append(trials.assign(store=str(path)))
    if not frames or all(f.empty for f in frames):
        raise NnrError(
            "the stores hold no successful timing trials: run 'nnr-profile run' on each machine"
        )
    data = pd.concat([f for f in frames if not f.empty], ignore_index=True)
    data = data.drop_duplicates(["cell_key", "host", "finished_at"]).reset_index(drop=True)
    data["losses"] = data["losses"].map(lambda v: v if isinstance(v, list) else [])
    for column in ("gpu_arch", "framework_version"):
        data[column] = data[column].astype(object).where(data[column].notna(), "unknown")
    data["image_size"] = data["image_size"].astype(object).where(data["image_size"].notna(), None)
    return data


def spec_key(frame: pd.DataFrame) -> pd.Series:
    """One text key per row from SPEC_COLUMNS (missing values as 'None')."""
    parts = [
        frame[c].map(lambda v: "None" if v is None or v != v else str(v)) for c in SPEC_COLUMNS
    ]
    return pd.Series(["\x1f".join(p) for p in zip(*parts, strict=True)], index=frame.index)


def env_label(arch: str, version: str) -> str:
    """'Ampere / 2.4.1' (the architecture, then the framework version)."""
    return f"{arch} / {version}"


def first_divergence(a: list[float], b: list[float]) -> int | None:
    """First index where two loss lists differ bit for bit (the shorter length if one ends)."""
    left = np.asarray(a, dtype=np.float64).view(np.uint64)
    right = np.asarray(b, dtype=np.float64).view(np.uint64)
    n = min(left.size, right.size)
    differ = np.flatnonzero(left[:n] != right[:n])
    if differ.size:
        return int(differ[0])
    return n if left.size != right.size else None


def _pair(first: pd.Series, other: pd.Series) -> tuple[bool, bool, int | None]:
    """(losses equal, weights equal, first divergent stored iteration) of two trials."""
    index = first_divergence(first["losses"], other["losses"])
    weights = first["weights_hash"] is not None and first["weights_hash"] == other["weights_hash"]
    return index is None, bool(weights), index


def across_table(trials: pd.DataFrame) -> pd.DataFrame:
    """ACROSS_COLUMNS: per spec, each pair of environments (a <= b; a == b within one).

    first_divergent_iteration counts from the start of training (warm-up + stored index);
    it is `iterations + warmup` when only the final weights differ, None when equal.
    """
    rows = []
    keyed = trials.assign(
        spec=spec_key(trials),
        env=[
            env_label(a, v)
            for a, v in zip(trials["gpu_arch"], trials["framework_version"], strict=True)
        ],
    )
    for _, spec_rows in keyed.groupby("spec", sort=True):
        envs = {
            env: group.sort_values("trial_id") for env, group in spec_rows.groupby("env", sort=True)
        }
        warmup = int(spec_rows["warmup"].iloc[0])
        base = spec_rows.iloc[0][SPEC_COLUMNS].to_dict()
        for env_a, env_b in itertools.combinations_with_replacement(sorted(envs), 2):
            a, b = envs[env_a], envs[env_b]
            pairs = (
                [(a.iloc[0], b.iloc[i]) for i in range(1, len(b))]
                if env_a == env_b
                else [(a.iloc[0], b.iloc[0])]
            )
            losses_equal, weights_equal, first = True, True, None
            for left, right in pairs:
                same_losses, same_weights, index = _pair(left, right)
                losses_equal &= same_losses
                weights_equal &= same_weights
                if index is None and not same_weights:
                    index = len(left["losses"])
                if index is not None:
                    first = index if first is None else min(first, index)
            rows.append(
                {
                    **base,
                    "env_a": env_a,
                    "env_b": env_b,
                    "trials_a": len(a),
                    "trials_b": len(b),
                    "losses_equal": losses_equal if pairs else None,
                    "weights_equal": weights_equal if pairs else None,
                    "reproducible": (losses_equal and weights_equal) if pairs else None,
                    "first_divergent_iteration": None if first is None else warmup + first,
                }
            )
    table = pd.DataFrame(rows, columns=ACROSS_COLUMNS)
    return table.astype({"first_divergent_iteration": "Int64"})


def matrix(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per spec (a readable label), the environment x environment matrix of verdicts.

    A cell is '=' (equal losses and weights), 'differs at N' (first divergent iteration N),
    or '-' on the diagonal of an environment with one trial only.
    """
    out = {}
    keyed = table.assign(spec=spec_key(table))
    for _, rows in keyed.groupby("spec", sort=True):
        first = rows.iloc[0]
        try:
            args = json.loads(first["workload_args"]) or {}
        except (TypeError, ValueError):
            args = {"args": first["workload_args"]}
        label = " ".join(
            [
                f"{first['framework']}/{first['workload']}",
                *(f"{k}={v}" for k, v in sorted(args.items())),
                f"{first['mode']}, batch {first['batch_size']}, {first['iterations']} iterations",
            ]
        )
        envs = sorted(set(rows["env_a"]) | set(rows["env_b"]))
        grid = pd.DataFrame("", index=envs, columns=envs)
        for _, row in rows.iterrows():
            if row["reproducible"] is None:
                cell = "-"
            elif row["reproducible"]:
                cell = "="
            else:
                cell = f"differs at {int(row['first_divergent_iteration'])}"
            grid.loc[row["env_a"], row["env_b"]] = cell
            grid.loc[row["env_b"], row["env_a"]] = cell
        out[label] = grid
    return out
