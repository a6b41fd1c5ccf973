"""JAX on the CPU: trials in their own process, the XLA flags a mode sets and records, the flax
twins' parameter counts, BatchNorm statistics in the jitted step, `calibrate`'s injected work,
and `list`, `run` and `report` with `--framework jax`.

Skipped without jax and flax, except where the environment variable CI is set: CI installs them
(scripts/setup.sh), so there a missing JAX fails.
"""

import importlib.util
import json
import math
import os

import pandas as pd
import pytest
from conftest import assert_one_line_usage_error, run_cli

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
    ("mediumcnn", ()): 2_087_784,
    ("mediumcnn", (("kernel", 1),)): 690_664,
    ("mediumcnn_7x7", ()): 9_073_384,
    ("resnet18_cifar", ()): 11_173_962,
    ("resnet18_cifar", (("classes", 100),)): 11_220_132,
    ("resnet50", ()): 25_557_032,
    ("calibrate", ()): 5_253_120,
}
"""Trainable parameters of the flax twins, equal to the PyTorch and TensorFlow ones."""


def _context(framework: str, name: str, args: dict) -> tuple:
    workload = get_workload(framework, name)
    resolved = workload.validate(args, None)
    ctx = BuildContext(resolved, "default", workload.input_shape, workload.classes_for(resolved))
    return workload, ctx


def _jax_trainable(name: str, args: dict) -> int:
    """The flax twin's parameter count, from shapes only (`jax.eval_shape`: nothing computed)."""
    import jax
    import numpy as np

    workload, ctx = _context("jax", name, args)
    inputs = np.zeros((2, *workload.input_shape), np.float32)
    model = workload.builder(ctx)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), inputs))
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(variables["params"]))


def _session(name: str, args: dict, mode: str, batch: int):
    """A JAX training session on the CPU, seeded with 0."""
    from nnr_profile.workloads.jax.adapter import ADAPTER

    workload = get_workload("jax", name)
    ADAPTER.seed(0)
    resolved = workload.validate(args, None)
    return ADAPTER.prepare(workload, resolved, MODES[mode], batch, workload.input_shape, "cpu")


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


def test_residual_blocks_update_their_batch_statistics_in_the_jitted_step():
    import flax.linen as nn
    import jax
    import numpy as np

    from nnr_profile.workloads.jax.adapter import JaxSession
    from nnr_profile.workloads.jax.models import KERAS_BN, block_classes, stack_class

    study_block, bottleneck = block_classes()
    model = stack_class()(
        layers=(
            nn.Conv(8, (3, 3)),
            nn.BatchNorm(**KERAS_BN),
            study_block(8, True),
            bottleneck(4, 2, True),
            lambda x: x.mean(axis=(1, 2)),
            nn.Dense(10),
        )
    )
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((4, 8, 8, 3)).astype(np.float32)
    targets = rng.integers(0, 10, 4)
    variables = model.init(jax.random.key(0), inputs)
    before = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(variables["batch_stats"])]
    assert len(before) == 2 * (1 + 3 + 4)  # mean and var of every BatchNorm, blocks' included
    device = jax.devices("cpu")[0]
    session = JaxSession(model, dict(variables), inputs, targets, jax.random.key(1), device)
    first_hash = session.weights_hash()
    losses = [session.loss_value(session.step()) for _ in range(2)]
    after = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(session.state[1])]
    assert all(math.isfinite(loss) for loss in losses)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert session.weights_hash() != first_hash
    assert session.injector is None and session.size_injected_work() == {}


def test_calibrate_sizes_its_work_without_retracing_and_only_deterministic_keeps_it():
    from nnr_profile.workloads.jax.injected import InjectedWork

    sized = {}
    for mode in ("default", "deterministic"):
        session = _session("calibrate", {"overhead": 1.0, "layers": 2}, mode, batch=32)
        assert isinstance(session.injector, InjectedWork)
        session.step()
        sized[mode] = session.size_injected_work()
        assert session._train_step._cache_size() == 1  # the amount is an argument: one trace
    assert sized["default"]["units"] == 0.0 and sized["default"]["target_pct"] == 0.0
    assert sized["deterministic"]["units"] > 0 and sized["deterministic"]["target_pct"] == 100.0
    assert sized["deterministic"]["unit_ms"] > 0


def test_the_injected_work_takes_time_per_unit_and_leaves_the_output_unchanged():
    import time

    import jax
    import numpy as np

    from nnr_profile.workloads.jax.injected import InjectedWork

    work = InjectedWork(256, 1.0, 1.0)
    inputs = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    run = jax.jit(lambda x, units: work(x, units))

    def seconds(units: float) -> float:
        run(inputs, np.float32(units)).block_until_ready()
        began = time.perf_counter()
        out = run(inputs, np.float32(units)).block_until_ready()
        np.testing.assert_array_equal(np.asarray(out), inputs)
        return time.perf_counter() - began

    assert seconds(400.0) > 5 * seconds(0.0)
    assert run._cache_size() == 1
    assert work(inputs) is inputs  # at init: no amount, no work


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
    for name in ("mlp", "lenet", "smallcnn", "mediumcnn", "resnet18_cifar", "resnet50"):
        assert f"jax/{name}" in proc.stdout
    assert "jax/calibrate" in proc.stdout
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


def test_verify_with_framework_jax_finds_both_modes_reproducible_on_the_cpu():
    proc = run_cli(
        "verify", "--model", "mlp", "--framework", "jax", "--gpu", "cpu",
        "--iterations", "2", "--batch-size", "2", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    verdicts = json.loads(proc.stdout)
    assert set(verdicts) == {"default", "deterministic"}
    for verdict in verdicts.values():
        assert verdict["reproducible"] is True and verdict["errors"] == [], verdict
        assert verdict["runs"] == 2 and verdict["first_divergent_iteration"] is None


def test_describe_with_framework_jax_counts_what_the_torch_twin_counts():
    from nnr_profile.workloads.describe import describe_one

    proc = run_cli(
        "describe", "--model", "smallcnn", "--framework", "jax", "--workload-arg", "bn=true",
        "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jax_twin = json.loads(proc.stdout)
    torch_twin = describe_one("smallcnn", "torch", None, {"bn": True})
    assert jax_twin["framework"] == "jax" and jax_twin["input_shape"] == [32, 32, 3]
    for key in ("trainable_params", "non_trainable_params", "macs_per_example"):
        assert jax_twin[key] == getattr(torch_twin, key), key
    kinds = [row["kind"] for row in jax_twin["layers"]]
    assert kinds == ["Conv", "BatchNorm"] * 3 + ["Dense", "Dense"]
    assert jax_twin["layers"][0]["output_shape"] == [32, 32, 16]
    assert sum(row["params"] for row in jax_twin["layers"]) == 15_882 + 160


def test_describe_jax_lists_the_layers_inside_residual_blocks():
    from nnr_profile.workloads.describe import describe_one

    twin = describe_one("resnet18_cifar", "jax", None, {})
    torch_twin = describe_one("resnet18_cifar", "torch", None, {})
    assert twin.macs_per_example == torch_twin.macs_per_example == 555_422_720
    assert twin.non_trainable_params == torch_twin.non_trainable_params
    names = [row.name for row in twin.layers]
    assert "layers_3/Conv_0" in names and "layers_3" not in names
    assert sum(row.params for row in twin.layers) == twin.trainable_params + 9_600


def test_verify_locate_is_refused_for_jax_in_one_line():
    proc = run_cli("verify", "--model", "mlp", "--framework", "jax", "--gpu", "cpu", "--locate")
    assert_one_line_usage_error(proc, "--locate records per-module values in torch and tf only")
