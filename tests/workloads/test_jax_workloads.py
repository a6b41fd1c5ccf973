"""JAX on the CPU: trials in their own process, the XLA flags a mode sets and records, the flax
twins' parameter counts, and `list`, `run` and `report` with `--framework jax`.

Skipped without jax and flax, except where the environment variable CI is set: CI installs them
(scripts/setup.sh), so there a missing JAX fails.
"""

import importlib.util
import os

import pandas as pd
import pytest
from conftest import run_cli

from nnr_profile.core.modes import MODES, parse_mode
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.profiler.runner.process import spawn_trial
from nnr_profile.workloads.knobs import knob_settings, mode_environment
from nnr_profile.workloads.registry import BuildContext, get_workload

MISSING = [name for name in ("jax", "flax", "optax") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("CI"),
    reason=f"{', '.join(MISSING)} not installed (nnr-profile[jax])",
)
JAX_TRAINABLE = {
    ("mlp", ()): 386_718,
    ("mlp", (("norm", "batch"),)): 387_894,
    ("mlp", (("norm", "layer"),)): 387_894,
    ("lenet", ()): 431_080,
    ("smallcnn", ()): 15_722,
    ("smallcnn", (("bn", True),)): 15_882,
}
"""Trainable parameters of the flax twins, equal to the PyTorch and TensorFlow ones."""


def _context(framework: str, name: str, args: dict) -> tuple:
    workload = get_workload(framework, name)
    resolved = workload.validate(args, None)
    ctx = BuildContext(resolved, "default", workload.input_shape, workload.classes_for(resolved))
    return workload, ctx


def _jax_trainable(name: str, args: dict) -> int:
    import jax
    import numpy as np

    workload, ctx = _context("jax", name, args)
    inputs = np.zeros((2, *workload.input_shape), np.float32)
    variables = workload.builder(ctx).init(jax.random.key(0), inputs)
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables["params"]))


def _torch_trainable(name: str, args: dict) -> int:
    workload, ctx = _context("torch", name, args)
    return sum(p.numel() for p in workload.builder(ctx).parameters() if p.requires_grad)


def test_jax_is_installed_where_ci_runs():
    assert not MISSING, f"CI is set but {', '.join(MISSING)} is missing: run scripts/setup.sh"


@pytest.mark.parametrize(("name", "args"), [(n, dict(a)) for n, a in JAX_TRAINABLE])
def test_jax_twins_have_the_torch_twins_trainable_parameters(name, args):
    count = _jax_trainable(name, args)
    assert count == JAX_TRAINABLE[(name, tuple(sorted(args.items())))]
    assert count == _torch_trainable(name, args)


def test_a_mode_is_xla_flags_chosen_by_the_jaxlib_version(monkeypatch):
    from nnr_profile.workloads.jax import knobs

    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/dump")
    monkeypatch.setattr(knobs, "jaxlib_version", lambda: (0, 10, 2))
    deterministic = mode_environment(MODES["deterministic"], "jax")
    assert deterministic == {
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "XLA_FLAGS": "--xla_dump_to=/tmp/dump --xla_gpu_exclude_nondeterministic_ops=true "
        "--xla_gpu_autotune_level=0",
    }
    assert mode_environment(MODES["default"], "jax") == {}
    assert mode_environment(MODES["fast"], "jax") == {}
    monkeypatch.setattr(knobs, "jaxlib_version", lambda: (0, 4, 28))
    old = mode_environment(parse_mode("xla_deterministic_ops"), "jax")
    assert old == {"XLA_FLAGS": "--xla_dump_to=/tmp/dump --xla_gpu_deterministic_ops=true"}
    assert set(knob_settings("jax")) == {
        "cublas_workspace",
        "xla_deterministic_ops",
        "xla_autotune_off",
    }


def test_jax_mlp_trials_in_their_own_process_time_iterations_and_record_the_flags():
    results = {
        mode: spawn_trial(
            TrialSpec("jax", "mlp", MODES[mode], batch_size=8, warmup=1, iterations=3),
            timeout_s=180,
        )
        for mode in ("default", "deterministic")
    }
    for result in results.values():
        assert result.status == STATUS_OK, result.error
        assert len(result.times_ms) == 3 and all(t > 0 for t in result.times_ms)
        assert result.environment["framework"]["backend"] == "cpu"
    recorded = results["deterministic"].knobs_applied
    assert recorded["xla_gpu_exclude_nondeterministic_ops"] == "true"
    assert recorded["xla_gpu_autotune_level"] == "0"
    assert recorded["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert (
        "--xla_gpu_autotune_level=0"
        in results["deterministic"].environment["framework"]["xla_flags"]
    )
    assert set(results["default"].knobs_applied) == {"recipe"}
    # GPU flags change nothing on the CPU: the same seed trains the same weights
    assert results["default"].losses == results["deterministic"].losses
    assert results["default"].weights_hash == results["deterministic"].weights_hash


def test_list_shows_the_jax_workloads():
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    for name in ("mlp", "lenet", "smallcnn"):
        assert f"jax/{name}" in proc.stdout
    assert "jax    installed" in proc.stdout


def test_run_with_framework_jax_then_report(db, tmp_path):
    tiny = ["--gpu", "cpu", "--batch-size", "4", "--iterations", "3", "--warmup", "1"]
    proc = run_cli(
        "run",
        "--model",
        "mlp",
        "--framework",
        "jax",
        *tiny,
        "--repeats",
        "2",
        "--modes",
        "default,deterministic",
        "--db",
        str(db),
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 trial(s) run, 0 already in the store, 0 failed" in proc.stdout
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "overhead.csv")
    assert list(table["framework"]) == ["jax"] and list(table["workload"]) == ["mlp"]
    assert list(table["mode"]) == ["deterministic"] and list(table["n_iterations"]) == [6]
