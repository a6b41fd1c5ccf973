"""Does `report` keep up with a paper-sized store? Time and peak memory of `write_report`.

Builds a store of 12,000 trials x 100 iterations (2,000 cells: 25 models x 2 frameworks x
8 GPUs x 5 modes, 6 repeats each) directly with SQLite inserts in the store's own schema
(created by `Store`), then runs the whole report (tables, paper table, figures) in a fresh
process and prints its wall time and peak resident memory. Target: under 15 s, under 1 GB.

    python benchmarks/report_scale.py                  # the paper-sized store
    python benchmarks/report_scale.py --models 5       # 400 cells
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nnr_profile.store.database import Store

GPUS = (
    ("Pascal", "Tesla P100-PCIE-16GB"),
    ("Volta", "Tesla V100-SXM2-32GB"),
    ("Turing", "Tesla T4"),
    ("Ampere", "NVIDIA A100-SXM4-80GB"),
    ("Ampere", "NVIDIA A10G"),
    ("Ada Lovelace", "NVIDIA L4"),
    ("Hopper", "NVIDIA H100 80GB HBM3"),
    ("Blackwell", "NVIDIA B200"),
)
MODES = (
    "default",
    "fast",
    "deterministic",
    "cudnn_deterministic",
    "deterministic_algorithms+cublas_workspace",
)
FRAMEWORKS = ("torch", "tf")

TRIAL_COLUMNS = (
    "cell_key, framework, workload, workload_args, mode, mode_knobs, device, gpu_index, host, "
    "gpu_arch, gpu_name, batch_size, image_size, warmup, iterations, seed, repeat, status, "
    "collector, spec"
)


def build_store(path: Path, models: int, repeats: int, iterations: int, seed: int = 0) -> int:
    """Write the synthetic store at `path`; returns the number of trials."""
    Store(path).close()
    rng = np.random.default_rng(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    trial_rows, times = [], []
    for model in range(models):
        base_ms = 20 + 10 * model
        for framework in FRAMEWORKS:
            for gpu, (arch, name) in enumerate(GPUS):
                for repeat in range(repeats):
                    for m, mode in enumerate(MODES):
                        key = f"{model}-{framework}-{gpu}-{repeat}-{mode}"
                        trial_rows.append(
                            (
                                key,
                                framework,
                                f"model{model:02d}",
                                "{}",
                                mode,
                                "{}",
                                f"gpu{gpu}",
                                gpu,
                                f"node{gpu}",
                                arch,
                                name,
                                128,
                                None,
                                10,
                                iterations,
                                0,
                                repeat,
                                "ok",
                                "timing",
                                json.dumps({"cell": key}),
                            )
                        )
                        scale = base_ms * (1 + 0.1 * m) * np.exp(rng.normal(0, 0.03))
                        times.append(scale * np.exp(rng.normal(0, 0.02, iterations)))
    with conn:
        conn.executemany(
            f"INSERT INTO trials({TRIAL_COLUMNS}) VALUES ({', '.join('?' * 20)})", trial_rows
        )
        ids = [row[0] for row in conn.execute("SELECT id FROM trials ORDER BY id")]
        conn.executemany(
            "INSERT INTO iterations(trial_id, iteration, time_ms) VALUES (?, ?, ?)",
            (
                (trial_id, i, float(t))
                for trial_id, series in zip(ids, times, strict=True)
                for i, t in enumerate(series)
            ),
        )
    conn.close()
    return len(trial_rows)


MEASURE = """
import resource, sys, time
start = time.perf_counter()
from nnr_profile.reports.report import write_report
report = write_report(sys.argv[1], sys.argv[2])
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
rss = usage.ru_maxrss / 1024
print(f"{wall:.1f} {cpu:.1f} {rss:.0f} {len(report.overhead)} {len(report.files)}")
"""


def main() -> None:
    """Build the store, run the report in a fresh process, print time and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--keep", type=Path, default=None, help="build the store here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nnr-scale-") as tmp:
        db = args.keep or Path(tmp) / "nnr.db"
        start = time.perf_counter()
        trials = build_store(db, args.models, args.repeats, args.iterations)
        built = time.perf_counter() - start
        cells = trials // args.repeats
        print(
            f"store: {trials} trials x {args.iterations} iterations, {cells} cells "
            f"(built in {built:.0f} s, {db.stat().st_size / 2**20:.0f} MiB)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", MEASURE, str(db), str(Path(tmp) / "report")],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        wall, cpu, peak_mb, rows, files = proc.stdout.split()[-5:]
        print(
            f"report: {wall} s wall ({cpu} s CPU, imports included), {peak_mb} MB peak RSS, "
            f"{rows} overhead rows, {files} files (target: < 15 s, < 1024 MB)"
        )


if __name__ == "__main__":
    main()
