"""scripts/gpu-check.sh runs on the CPU (its dry run), and its wheelhouse holds what the GPU
machine lacks."""

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAS_JAX = all(importlib.util.find_spec(name) for name in ("jax", "flax", "optax"))


@pytest.mark.slow
def test_the_gpu_check_dry_run_runs_every_step_and_prints_its_summary(tmp_path):
    env = {**os.environ, "NNR_CHECK_DRY_RUN": "1", "NNR_CHECK_DIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = (tmp_path / "steps.txt").read_text().splitlines()
    names = [line.split()[0] for line in steps]
    assert names == [
        "environment",
        "calibrate-1.0",
        "study",
        "ladder-resnet50",
        names[4],
        "verify-resnet18",
        *(["jax-smallcnn"] if HAS_JAX else []),
        "trial-starts",
        "report",
    ]
    assert names[4] in ("kernels-nsys", "kernels-torch-profiler")
    assert all(" rc=0 " in line for line in steps), steps
    out = done.stdout
    for title in ("overhead against default", "knob ladder:", "per-trial overhead"):
        assert title in out
    assert "step3_deterministic_algorithms" in out
    assert "| study " in out or "study |" in out  # the preset names its rows
    assert '"reproducible": true' in out
    starts = out.split("trial starts, cold vs warm")[1]
    assert " cold " in starts and " warm " in starts and "True" in starts  # the same numbers
    if HAS_JAX:
        assert "| jax " in out  # the JAX row of the overhead table


@pytest.mark.slow
def test_the_wheelhouse_holds_cp312_wheels_of_what_the_gpu_image_lacks(tmp_path):
    env = {**os.environ, "NNR_WHEELHOUSE": str(tmp_path / "whl")}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-wheelhouse.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 and not os.environ.get("CI"):
        pytest.skip(f"no package registry reachable here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr
    wheels = sorted(p.name for p in (tmp_path / "whl").glob("*.whl"))
    names = {w.split("-")[0].lower() for w in wheels}
    assert names == {"orjson", "ijson", "submitit", "nvtx"}
    assert all("cp312" in w or "py3-none-any" in w for w in wheels), wheels
    assert any(w.startswith("nvtx-0.2.11-") for w in wheels)  # pyproject's pin travels
