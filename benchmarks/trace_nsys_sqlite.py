"""Benchmark: `nnr-profile trace summarize` vs `nsys stats --report gpukernsum` on a
>= 1,000,000-kernel Nsight Systems SQLite export, both as whole processes.

The big file is built in a temp dir from the cloverleaf fixture by doubling its kernel
rows (each copy shifted in time past the last kernel) until there are >= 1M rows.
Run: .venv/bin/python benchmarks/trace_nsys_sqlite.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURES = Path(
    os.environ.get("NNR_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)
SOURCE = FIXTURES / "nsys_sqlite" / "pipit_cloverleaf_a100_nsys2024.5.1.sqlite"
TARGET_ROWS = 1_000_000

MEASURE = """
import resource, subprocess, sys, time, json
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True)
wall = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.buffer.write(done.stderr)
sys.stdout.buffer.write(done.stdout)
sys.stderr.write("\\n@@" + json.dumps([done.returncode, wall, peak_kb / 1024]))
"""


def build_big_export(directory: Path) -> tuple[Path, int, int]:
    """Copy the fixture and double its kernel rows until >= TARGET_ROWS; (path, rows, total)."""
    big = directory / "big.sqlite"
    shutil.copy(SOURCE, big)
    conn = sqlite3.connect(big)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(CUPTI_ACTIVITY_KIND_KERNEL)")]
    shifted = ", ".join(f'"{c}" + :shift' if c in ("start", "end") else f'"{c}"' for c in columns)
    quoted = ", ".join(f'"{c}"' for c in columns)
    while True:
        rows, low, high = conn.execute(
            'SELECT COUNT(*), MIN(start), MAX("end") FROM CUPTI_ACTIVITY_KIND_KERNEL'
        ).fetchone()
        if rows >= TARGET_ROWS:
            break
        conn.execute(
            f"INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL ({quoted}) "
            f"SELECT {shifted} FROM CUPTI_ACTIVITY_KIND_KERNEL",
            {"shift": high - low + 1},
        )
        conn.commit()
    total = conn.execute('SELECT SUM("end" - start) FROM CUPTI_ACTIVITY_KIND_KERNEL').fetchone()[0]
    conn.close()
    return big, rows, total


def measure(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of one whole-process run."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=False
    )
    stats_line = done.stderr.rsplit("@@", 1)[-1]
    code, wall, peak = json.loads(stats_line)
    if code != 0:
        raise SystemExit(f"{command[0]} failed ({code}):\n{done.stderr[-2000:]}")
    return wall, peak, done.stdout


def nsys_totals(text: str) -> tuple[int, int]:
    """(calls, total ns) from nsys stats CSV output (preamble lines skipped)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Total Time" in line and "," in line)
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    total_key = next(k for k in rows[0] if k.startswith("Total Time"))
    return sum(int(r["Instances"]) for r in rows), sum(int(r[total_key]) for r in rows)


def main() -> None:
    """Build the file, time both tools, check totals and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big, rows, total = build_big_export(Path(tmp))
        print(
            f"built {big.name}: {rows:,} kernels, total {total:,} ns, "
            f"{big.stat().st_size / 2**20:.0f} MiB"
        )
        ours_cmd = [
            sys.executable,
            "-m",
            "nnr_profile.cli.main",
            "trace",
            "summarize",
            str(big),
            "--format",
            "json",
        ]
        results: dict[str, list[tuple[float, float]]] = {"nnr-profile": []}
        for _ in range(args.repeats):
            wall, peak, out = measure(ours_cmd)
            summary = json.loads(out)
            got = (sum(r["calls"] for r in summary), sum(r["total_ns"] for r in summary))
            assert got == (rows, total), f"nnr-profile totals {got} != SQL {(rows, total)}"
            results["nnr-profile"].append((wall, peak))
        nsys = shutil.which("nsys")
        if nsys is None:
            print("nsys not found on PATH: timing nnr-profile only")
        else:
            version = subprocess.run([nsys, "--version"], capture_output=True, text=True)
            print(version.stdout.strip())
            nsys_cmd = [
                nsys,
                "stats",
                "--report",
                "gpukernsum",
                "--format",
                "csv",
                "--force-export=false",
                str(big),
            ]
            results["nsys stats"] = []
            for _ in range(args.repeats):
                wall, peak, out = measure(nsys_cmd)
                got = nsys_totals(out)
                assert got == (rows, total), f"nsys stats totals {got} != SQL {(rows, total)}"
                results["nsys stats"].append((wall, peak))
        print(f"totals equal: {rows:,} kernels, {total:,} ns\n")
        best = {tool: min(runs) for tool, runs in results.items()}
        ours = best["nnr-profile"][0]
        print(f"| tool | time_s (best of {args.repeats}) | peak_rss_mb | ratio |")
        print("|---|---:|---:|---:|")
        for tool, (wall, _) in best.items():
            peak = max(p for _, p in results[tool])
            print(f"| {tool} | {wall:.3f} | {peak:.0f} | {wall / ours:.2f} |")


if __name__ == "__main__":
    main()
