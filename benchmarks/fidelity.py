"""Does the pipeline recover a known overhead? `calibrate` with injected 0, 5, 20 and 100 %.

Runs real sweeps (one process per trial, as `nnr-profile run` does) into a temporary store and
prints injected vs recovered overhead with the 95 % CI and its width. Target: within +-1 pp at
0.2 and 0. Run on a quiet machine:

    python benchmarks/fidelity.py                      # PyTorch on the CPU
    python benchmarks/fidelity.py --framework tf
    python benchmarks/fidelity.py --gpu 0 --batch-size 256
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from nnr_profile.core.modes import parse_modes
from nnr_profile.reports.overhead import overhead_table
from nnr_profile.runner.sweep import SweepSpec, resolve_devices, run_sweep
from nnr_profile.store.database import Store

OVERHEADS = (0.0, 0.05, 0.2, 1.0)


def measure(framework: str, overhead: float, args: argparse.Namespace, folder: Path) -> dict:
    """One sweep of calibrate at `overhead`; the overhead row of its report."""
    db = folder / f"{framework}-{overhead}.db"
    spec = SweepSpec(
        workloads=((framework, "calibrate"),),
        modes=tuple(parse_modes("default,deterministic")),
        devices=resolve_devices(args.gpu).devices,
        repeats=args.repeats,
        iterations=args.iterations,
        warmup=args.warmup,
        batch_size=args.batch_size,
        workload_args={"overhead": overhead, "layers": args.layers},
    )
    outcome = run_sweep(spec, db)
    if outcome.failed:
        raise SystemExit(f"{framework} overhead {overhead}: {outcome.failed[0].error}")
    with Store(db, create=False) as store:
        row = overhead_table(store.iterations(), store.trials()).iloc[0]
    return row.to_dict()


def main() -> None:
    """Print the fidelity table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="torch", choices=["torch", "tf"])
    parser.add_argument("--gpu", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS for the trials (1 resists noise from neighbours)",
    )
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    print(
        f"framework={args.framework} device={args.gpu} batch={args.batch_size} "
        f"layers={args.layers} iterations={args.iterations} repeats={args.repeats} "
        f"threads={args.threads}"
    )
    print(
        "| injected_pct | recovered_pct | ci_low_pct | ci_high_pct | ci_width_pp | error_pp "
        "| baseline_median_ms | noisy |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="nnr-fidelity-") as tmp:
        for overhead in OVERHEADS:
            row = measure(args.framework, overhead, args, Path(tmp))
            injected = overhead * 100
            print(
                f"| {injected:.1f} | {row['overhead_pct']:.2f} | {row['ci_low_pct']:.2f} | "
                f"{row['ci_high_pct']:.2f} | {row['ci_high_pct'] - row['ci_low_pct']:.2f} | "
                f"{row['overhead_pct'] - injected:+.2f} | {row['baseline_median_ms']:.3f} | "
                f"{row['noisy']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
