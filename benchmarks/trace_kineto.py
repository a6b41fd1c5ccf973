"""Benchmark: `nnr-profile trace summarize` vs HolisticTraceAnalysis `Trace.parse_traces`
on the two HTA trace-diff Kineto traces, both as whole processes.

HTA is not a project dependency: `pip install HolisticTraceAnalysis` into the venv first.
HTA runs with `use_multiprocessing=False` (its fastest setting for one file).
Run: .venv/bin/python benchmarks/trace_kineto.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(
    os.environ.get("NNR_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)
TRACES = ("hta_trace_diff_control.json.gz", "hta_trace_diff_test.json.gz")

HTA_SCRIPT = """
import os, shutil, sys, tempfile
from hta.common.trace import Trace
src = sys.argv[1]
folder = tempfile.mkdtemp()
shutil.copy(src, folder)
trace = Trace(trace_files={0: os.path.join(folder, os.path.basename(src))}, trace_dir=folder)
trace.parse_traces(max_ranks=1, use_multiprocessing=False)
df = trace.get_trace(0)
kernel = trace.symbol_table.get_sym_id_map()["kernel"]
kernels = df[df["cat"] == kernel]
print(len(kernels), int(kernels["dur"].sum()) * 1000)
shutil.rmtree(folder)
"""

MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True)
wall = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.buffer.write(done.stdout)
sys.stderr.buffer.write(done.stderr)
sys.stderr.write("\\n@@" + json.dumps([done.returncode, wall, peak_kb / 1024]))
"""


def measure(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of one whole-process run."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True)
    code, wall, peak = json.loads(done.stderr.rsplit("@@", 1)[-1])
    if code != 0:
        raise SystemExit(f"{command[:3]} failed ({code}):\n{done.stderr[-2000:]}")
    return wall, peak, done.stdout


def main() -> None:
    """Time both tools on each trace, check equal kernel counts and totals, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    have_hta = importlib.util.find_spec("hta") is not None
    if not have_hta:
        print("HolisticTraceAnalysis not installed: timing nnr-profile only")
    print("| trace | tool | kernels | total_ns | time_s (best) | peak_rss_mb | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in TRACES:
        path = str(FIXTURES / "kineto" / name)
        ours_cmd = [
            sys.executable,
            "-m",
            "nnr_profile.cli.main",
            "trace",
            "summarize",
            path,
            "--format",
            "json",
        ]
        runs = [measure(ours_cmd) for _ in range(args.repeats)]
        rows = json.loads(runs[0][2])
        ours = (sum(r["calls"] for r in rows), sum(r["total_ns"] for r in rows))
        table = [("nnr-profile", ours, min(r[0] for r in runs), max(r[1] for r in runs))]
        if have_hta:
            hta_runs = [
                measure([sys.executable, "-c", HTA_SCRIPT, path]) for _ in range(args.repeats)
            ]
            count, total = (int(x) for x in hta_runs[0][2].split())
            assert (count, total) == ours, f"HTA {(count, total)} != nnr-profile {ours}"
            table.append(
                ("HTA", (count, total), min(r[0] for r in hta_runs), max(r[1] for r in hta_runs))
            )
        base = table[0][2]
        for tool, (count, total), wall, peak in table:
            print(
                f"| {name} | {tool} | {count} | {total} | {wall:.3f} | {peak:.0f} | "
                f"{wall / base:.2f} |"
            )


if __name__ == "__main__":
    main()
