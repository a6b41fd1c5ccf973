"""Kernel collectors on real CPU trials: torch-profiler, nsys (real capture), nvprof checks."""

import gzip
import json
import os
import shutil

import pandas as pd
import pytest
from conftest import TINY, run_cli

from nnr_profile.core.environment import installed_version
from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.collectors.base import get_collector, parse_collectors
from nnr_profile.profiler.collectors.nsys import no_capture_reason
from nnr_profile.profiler.collectors.nvtx_ranges import read_nvtx_ranges
from nnr_profile.profiler.runner.process import spawn_trial

SPEC = dict(batch_size=2, image_size=16, warmup=1, iterations=4)


def test_collector_names_are_checked_and_timing_always_runs():
    assert parse_collectors("torch-profiler") == ["timing", "torch-profiler"]
    assert parse_collectors("timing,nsys,nsys") == ["timing", "nsys"]
    with pytest.raises(UsageError, match="unknown collector 'perf'"):
        parse_collectors("perf")


def test_nvprof_refuses_ampere_and_newer_and_the_cpu():
    nvprof = get_collector("nvprof")
    hopper = {"index": 0, "name": "NVIDIA H100", "compute_capability": "9.0"}
    with pytest.raises(UsageError, match=r"compute capability 8\.0 and newer.*9\.0"):
        nvprof.check("torch", [hopper])
    with pytest.raises(UsageError, match="GPUs only"):
        nvprof.check("torch", [None])


@pytest.mark.slow
def test_torch_profiler_keeps_a_chrome_trace_and_the_cpu_op_table(tmp_path):
    spec = TrialSpec("torch", "smallcnn", MODES["default"], collector="torch-profiler", **SPEC)
    result = spawn_trial(spec, timeout_s=300, artifact_dir=tmp_path)
    assert result.status == "ok", result.error
    assert len(result.times_ms) == 4
    (trace,) = result.artifacts
    with gzip.open(trace) as handle:
        events = json.load(handle)["traceEvents"]
    iterations = [e for e in events if e.get("name", "").startswith("iteration ")]
    assert len(iterations) == 4
    ops = {k["name"]: k for k in result.kernels}
    assert "aten::convolution_backward" in ops
    assert ops["aten::convolution_backward"]["calls"] == 3 * 4
    assert all(k["total_ns"] > 0 for k in result.kernels)


def test_the_nvtx_pin_is_one_nsys_2022_sees_and_an_empty_capture_says_why():
    assert installed_version("nvtx") is not None and no_capture_reason(
        installed_version("nvtx")
    ).endswith("did not run")
    assert "Nsight Systems 2022.4" in no_capture_reason("0.2.17")
    assert "nvtx package is missing" in no_capture_reason(None)


@pytest.mark.slow
def test_nsys_captures_the_timed_iterations_of_a_real_cpu_trial(tmp_path):
    if shutil.which("nsys") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Nsight Systems (scripts/install-nsys.sh)")
        pytest.skip("nsys not installed (scripts/install-nsys.sh installs it)")
    spec = TrialSpec("torch", "mlp", MODES["deterministic"], collector="nsys", **SPEC)
    result = spawn_trial(spec, timeout_s=300, artifact_dir=tmp_path)
    assert result.status == "ok", result.error
    sqlite = next(p for p in result.artifacts if p.endswith(".sqlite"))
    ranges = read_nvtx_ranges(sqlite)
    names = [name for name, _, _ in ranges]
    assert names.count("nnr-timed") == 1
    assert [n for n in names if n.startswith("iteration ")] == [f"iteration {i}" for i in range(4)]
    (timed,) = [(a, b) for name, a, b in ranges if name == "nnr-timed"]
    assert all(timed[0] <= a <= b <= timed[1] for name, a, b in ranges if name != "nnr-timed")
    assert result.environment["nsys_nvtx_iterations"] == 4
    assert result.kernels == []


@pytest.mark.slow
def test_run_with_the_torch_profiler_reports_kernels_and_attribution(db, tmp_path):
    proc = run_cli(
        "run", "--model", "smallcnn", *TINY, "--collector", "torch-profiler", "--db", str(db)
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 trial(s) run" in proc.stdout
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    kernels = pd.read_csv(out / "kernels.csv")
    attribution = pd.read_csv(out / "attribution.csv")
    assert set(kernels["mode"]) == {"default", "deterministic"}
    assert (out / "attribution.png").stat().st_size > 10_000
    totals = kernels.groupby("mode")["time_ms_per_iter"].sum()
    difference = totals["deterministic"] - totals["default"]
    assert attribution["delta_ms_per_iter"].sum() == pytest.approx(difference, abs=1e-6)
    overhead = pd.read_csv(out / "overhead.csv")
    assert (overhead["n_trials"] == 1).all()


def test_unknown_collector_is_a_usage_error(db):
    proc = run_cli("run", "--model", "smallcnn", "--collector", "perf", "--db", str(db))
    assert proc.returncode == 2
    assert "unknown collector 'perf'" in proc.stderr
    assert "Traceback" not in proc.stderr
