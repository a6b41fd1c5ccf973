"""Does the pipeline recover a known time overhead? `calibrate` at injected 0, 5, 20 and 100 %.

Runs real sweeps (one process per trial, default and deterministic interleaved within each
repeat, as `nnr-profile run` does) into temporary stores and reads them back through the
report's own overhead pipeline (`store_overhead`: paired per-repeat log ratios, t-interval,
trial as unit). Each injected value runs as `nnr-profile run --target-ci` does
(`run_to_precision`): repeats are added until the 95 % CI reaches no further than --target-ci
percentage points from the estimate, or --max-repeats. Per injected value it prints the
estimate, the CI, the error, the half-width reached and the repeats used; `ok` when the CI
contains the truth and the error is within +-1 pp or within the half-width. Run on a quiet
machine:

    python benchmarks/fidelity.py                      # PyTorch on the CPU
    python benchmarks/fidelity.py --framework tf
    python benchmarks/fidelity.py --framework jax       # with nnr-profile[jax] installed
    python benchmarks/fidelity.py --gpu 0 --batch-size 256 --layers 20
    python benchmarks/fidelity.py --trial-start cold   # fresh interpreters (default: warm)

`--threads 1,2 --repeats 8` instead runs a fixed number of repeats per OMP_NUM_THREADS value
(`default`: the runner's own choice), the values interleaved repeat by repeat, to compare the
CI widths they give on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nnr_profile.core.modes import parse_modes
from nnr_profile.profiler.runner.pool import RunOutcome
from nnr_profile.profiler.runner.sweep import SweepSpec, resolve_devices, run_sweep
from nnr_profile.reports.overhead_report import store_overhead
from nnr_profile.store.database import Store
from nnr_profile.studies.precision import PrecisionTarget, half_widths, run_to_precision

OVERHEADS = (0.0, 0.05, 0.2, 1.0)
ERROR_PP = 1.0
FRAMEWORKS = (
    "torch",
    "tf",
    *(["jax"] if all(importlib.util.find_spec(m) for m in ("jax", "flax", "optax")) else []),
)
"""The frameworks with a `calibrate` here (JAX only where it is installed)."""


@dataclass
class Cell:
    """One injected overhead under one thread setting, where its trials are stored, its row."""

    overhead: float
    threads: str
    db: Path
    row: dict | None = None


def sweep_spec(cell: Cell, args: argparse.Namespace, repeats: int) -> SweepSpec:
    """calibrate at the cell's overhead, default and deterministic, `repeats` repeats."""
    return SweepSpec(
        workloads=((args.framework, "calibrate"),),
        modes=tuple(parse_modes("default,deterministic")),
        devices=resolve_devices(args.gpu).devices,
        repeats=repeats,
        iterations=args.iterations,
        warmup=args.warmup,
        batch_size=args.batch_size,
        workload_args={"overhead": cell.overhead, "layers": args.layers},
    )


def set_threads(threads: str) -> None:
    """OMP_NUM_THREADS for the trials started from now on (`default`: the runner chooses)."""
    if threads == "default":
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = threads


def launcher(cell: Cell, start: str = "warm") -> Callable[[SweepSpec], RunOutcome]:
    """`launch` for run_to_precision: run a sweep's pending trials into the cell's store, each
    trial started `start` (warm or cold, as `run --trial-start`)."""

    def launch(spec: SweepSpec) -> RunOutcome:
        outcome = run_sweep(spec, cell.db, start=start)
        if outcome.failed:
            raise SystemExit(f"overhead {cell.overhead}: {outcome.failed[0].error}")
        return outcome

    return launch


def read_row(cell: Cell) -> None:
    """The cell's overhead row from the report's own table, with what the trials recorded."""
    with Store(cell.db, create=False) as store:
        table = store_overhead(store)
        cell.row = table.iloc[0].to_dict()
        cell.row["half_width_pp"] = float(half_widths(table).iloc[0])
        cell.row["sizing"] = _sizing(store)
        cell.row["threads_seen"] = _threads(store)


def to_precision(args: argparse.Namespace, folder: Path) -> list[Cell]:
    """Each injected value run to --target-ci (or --max-repeats), one after another."""
    set_threads(args.threads)
    target = PrecisionTarget(args.target_ci, args.max_repeats)
    cells = []
    for overhead in args.overheads:
        cell = Cell(overhead, args.threads, folder / f"{overhead}.db")
        began = time.perf_counter()
        run_to_precision(
            sweep_spec(cell, args, args.repeats), cell.db, target, launcher(cell, args.trial_start)
        )
        read_row(cell)
        print(f"injected {overhead * 100:g} % done in {time.perf_counter() - began:.0f} s")
        cells.append(cell)
    return cells


def fixed_repeats(args: argparse.Namespace, folder: Path) -> list[Cell]:
    """--repeats per (thread setting, injected value), settings interleaved repeat by repeat."""
    cells = [
        Cell(overhead, threads, folder / f"{threads}-{overhead}.db")
        for threads in args.threads.split(",")
        for overhead in args.overheads
    ]
    for repeat in range(args.repeats):
        for cell in cells:
            set_threads(cell.threads)
            spec = replace(sweep_spec(cell, args, repeat + 1), first_repeat=repeat)
            launcher(cell, args.trial_start)(spec)
    for cell in cells:
        read_row(cell)
    return cells


def _sizing(store: Store) -> dict[str, float]:
    """Medians over the deterministic trials of what sizing set: step_ms (a step without the
    extra work, the sizing clock) and units (of extra work kept)."""
    trials = store.trials()
    rows = trials[(trials["mode"] == "deterministic") & (trials["status"] == "ok")]
    sized = [json.loads(k).get("injected_work", {}) for k in rows["knobs_applied"]]
    sized = [s for s in sized if s.get("step_ms")]
    return {
        key: float(np.median([s[key] for s in sized])) if sized else np.nan
        for key in ("step_ms", "units")
    }


def _threads(store: Store) -> str:
    """The intra-op thread counts the trials recorded in their environment."""
    seen = set()
    for env_id in store.trials()["environment_id"].dropna().unique():
        framework = store.environment(env_id).get("framework", {})
        threads = framework.get("num_threads", framework.get("intra_op_threads"))
        seen.add(str(framework.get("omp_num_threads") if threads is None else threads))
    return ",".join(sorted(seen))


def verdict(row: dict, injected_pct: float) -> tuple[float, bool, bool]:
    """(error pp, CI contains the truth, error within +-1 pp or within the half-width)."""
    error = row["overhead_pct"] - injected_pct
    contains = bool(row["ci_low_pct"] <= injected_pct <= row["ci_high_pct"])
    return error, contains, bool(abs(error) <= max(ERROR_PP, row["half_width_pp"]))


def print_table(cells: list[Cell]) -> None:
    """The fidelity table in Markdown."""
    print(
        "| threads | injected_pct | estimate_pct | ratio | ci_low_pct | ci_high_pct | "
        "half_width_pp | error_pp | repeats | ci_contains | within | units | sizing_step_ms |"
    )
    print("|---|" + "---:|" * 8 + "---|---|---:|---:|")
    for cell in cells:
        row, injected = cell.row, cell.overhead * 100
        error, contains, within = verdict(row, injected)
        print(
            f"| {row['threads_seen']} | {injected:g} | {row['overhead_pct']:+.2f} | "
            f"{row['ratio']:.3f}x | {row['ci_low_pct']:+.2f} | {row['ci_high_pct']:+.2f} | "
            f"{row['half_width_pp']:.2f} | {error:+.2f} | {row['n_pairs']} | "
            f"{'yes' if contains else 'NO'} | {'yes' if within else 'NO'} | "
            f"{row['sizing']['units']:.1f} | {row['sizing']['step_ms']:.2f} |"
        )


def main() -> None:
    """Run the sweeps and print the fidelity table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="torch", choices=FRAMEWORKS)
    parser.add_argument("--gpu", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--overheads", type=lambda text: [float(v) for v in text.split(",")], default=OVERHEADS
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="first (or, with --threads a,b, all)"
    )
    parser.add_argument("--target-ci", type=float, default=1.0, help="half-width goal, pp")
    parser.add_argument("--max-repeats", type=int, default=12)
    parser.add_argument("--threads", default="default", help="OMP_NUM_THREADS value(s)")
    parser.add_argument("--keep", type=Path, help="keep the stores in this folder")
    parser.add_argument("--trial-start", default="warm", choices=("warm", "cold"))
    args = parser.parse_args()
    print(
        f"framework={args.framework} device={args.gpu} batch={args.batch_size} "
        f"layers={args.layers} iterations={args.iterations} warmup={args.warmup} "
        f"target_ci={args.target_ci} repeats={args.repeats}..{args.max_repeats} "
        f"threads={args.threads} trial_start={args.trial_start} "
        f"load={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    began = time.perf_counter()
    measure = fixed_repeats if "," in args.threads else to_precision
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        cells = measure(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="nnr-fidelity-") as tmp:
            cells = measure(args, Path(tmp))
    print_table(cells)
    print(f"wall {time.perf_counter() - began:.0f} s, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
