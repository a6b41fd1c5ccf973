"""What a trial costs besides its timed iterations, cold vs warm starts, per framework.

Runs the same small sweep (default and deterministic, `--repeats` each, `--iterations` timed
iterations of a tiny model on the CPU, or `--gpu N`) once with cold trial starts (a fresh
interpreter per trial) and once with warm ones (forked from a server that imported the
framework: `nnr_profile.profiler.runner.warm`), each into a fresh store, and prints per
framework and start:

- `overhead_s_per_trial`: the sweep's wall time outside the timed iterations, per trial (the
  warm server's own start is in the first trial's, so it is paid once per sweep);
- `timed_share_pct`: the timed iterations' share of the sweep's wall time;
- `same_numbers`: whether both starts gave the same losses and weights hashes per cell.

    python benchmarks/sweep_efficiency.py                      # torch, and tf/jax if installed
    python benchmarks/sweep_efficiency.py --framework torch --repeats 5
    python benchmarks/sweep_efficiency.py --framework torch,jax --gpu 0   # on a GPU
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import pandas as pd

MODELS = {"torch": "mlp", "tf": "mlp", "jax": "mlp"}
MODULES = {"torch": "torch", "tf": "tensorflow", "jax": "jax"}


def _sweep(framework: str, start: str, args: argparse.Namespace, folder: Path) -> dict:
    """Run the sweep with `start`; its wall time, timed time and per-cell numbers."""
    from nnr_profile.core.modes import parse_modes
    from nnr_profile.profiler.runner.sweep import SweepSpec, run_sweep
    from nnr_profile.store.database import Store

    device = None if args.gpu == "cpu" else int(args.gpu)
    spec = SweepSpec(
        workloads=((framework, MODELS[framework]),),
        devices=(device,),
        modes=tuple(parse_modes("default,deterministic")),
        repeats=args.repeats,
        iterations=args.iterations,
        warmup=1,
        batch_size=8,
        timeout_s=600,
    )
    db = folder / f"{framework}-{start}.db"
    began = time.perf_counter()
    outcome = run_sweep(spec, db, start=start)
    wall_s = time.perf_counter() - began
    with Store(db) as store:
        trials = store.trials()
        timed_s = float(store.iterations()["time_ms"].sum()) / 1e3
    cells = trials.set_index(["mode", "repeat"])[["weights_hash"]].sort_index()
    return {
        "framework": framework,
        "start": start,
        "trials": outcome.ran,
        "failed": len(outcome.failed),
        "wall_s": wall_s,
        "timed_s": timed_s,
        "cells": cells,
    }


def main() -> None:
    """Parse the options, run both sweeps per framework, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="all", help="torch, tf, jax or all installed")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per mode")
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per trial")
    parser.add_argument("--gpu", default="cpu", help="cpu, or the NVML index of a GPU")
    args = parser.parse_args()
    frameworks = list(MODELS) if args.framework == "all" else args.framework.split(",")
    frameworks = [f for f in frameworks if find_spec(MODULES[f]) is not None]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for framework in frameworks:
            runs = [_sweep(framework, start, args, Path(folder)) for start in ("cold", "warm")]
            same = runs[0]["cells"].equals(runs[1]["cells"])
            for run in runs:
                trials = max(run["trials"], 1)
                rows.append(
                    {
                        "framework": framework,
                        "start": run["start"],
                        "trials": run["trials"],
                        "failed": run["failed"],
                        "sweep_wall_s": round(run["wall_s"], 2),
                        "overhead_s_per_trial": round((run["wall_s"] - run["timed_s"]) / trials, 3),
                        "timed_share_pct": round(100 * run["timed_s"] / run["wall_s"], 1),
                        "same_numbers": same,
                    }
                )
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
