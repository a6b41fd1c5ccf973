"""`nnr-profile verify`: JSON shape, exit codes, bitwise comparison, op collection."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_env, run_cli

from nnr_profile.studies.verify import (
    RunRecord,
    compare_runs,
    ops_from_error,
    ops_from_warnings,
)

VERDICT_KEYS = {
    "reproducible",
    "first_divergent_iteration",
    "max_abs_weight_diff",
    "nondeterministic_ops",
}
TINY = ["--gpu", "cpu", "--batch-size", "4", "--iterations", "3"]

PLUGIN = '''
import os
from nnr_profile.workloads import register_workload


@register_workload("torch", "unseeded", input_shape=(8,), num_classes=4, input_kind="features")
def build(ctx):
    """Draws from os.urandom in forward and calls put_ (no deterministic implementation)."""
    import torch
    from torch import nn

    class Unseeded(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            torch.zeros(4).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))
            noise = int.from_bytes(os.urandom(2), "little") * 1e-6
            return self.lin(x) * (1.0 + noise)

    return Unseeded()
'''


def _ok(losses, weights):
    return RunRecord("ok", losses=losses, weights=np.asarray(weights, dtype=np.float32))


def test_identical_runs_are_reproducible():
    verdict = compare_runs("deterministic", [_ok([1.0, 0.5], [1, 2]), _ok([1.0, 0.5], [1, 2])])
    assert verdict.reproducible
    assert verdict.first_divergent_iteration is None
    assert verdict.max_abs_weight_diff == 0.0


def test_runs_part_at_the_first_differing_loss():
    verdict = compare_runs(
        "default",
        [_ok([1.0, 0.5, 0.25], [1, 2]), _ok([1.0, 0.5000001, 0.2], [1, 2.5])],
    )
    assert not verdict.reproducible
    assert verdict.first_divergent_iteration == 1
    assert verdict.max_abs_weight_diff == pytest.approx(0.5)


def test_weights_only_difference_parts_after_the_last_iteration():
    verdict = compare_runs("default", [_ok([1.0, 0.5], [1, 2]), _ok([1.0, 0.5], [1, 2.001])])
    assert not verdict.reproducible and verdict.first_divergent_iteration == 2


def test_negative_zero_differs_bitwise():
    verdict = compare_runs("default", [_ok([1.0], [0.0]), _ok([1.0], [-0.0])])
    assert not verdict.reproducible and verdict.max_abs_weight_diff == 0.0


def test_a_failed_run_is_not_reproducible_and_names_the_op():
    failed = RunRecord(
        "failed",
        error="RuntimeError: index_add_cuda_ does not have a deterministic implementation, but",
    )
    failed.nondeterministic_ops = ops_from_error(failed.error)
    verdict = compare_runs("deterministic", [_ok([1.0], [1]), failed])
    assert not verdict.reproducible and verdict.max_abs_weight_diff is None
    assert verdict.nondeterministic_ops == ["index_add_cuda_"]


def test_ops_from_warnings_and_tf_errors():
    messages = [
        "put_ does not have a deterministic implementation, but you set 'torch.use_...'",
        "CUDA initialization: something else",
        "put_ does not have a deterministic implementation, but again",
    ]
    assert ops_from_warnings(messages) == ["put_"]
    tf_error = (
        "UnimplementedError: Deterministic GPU implementation of unsorted segment reduction "
        "op not available."
    )
    assert ops_from_error(tf_error) == ["unsorted segment reduction"]
    softmax = (
        "UnimplementedError: A deterministic GPU implementation of SparseSoftmaxXentWithLogitsOp "
        "is not currently available."
    )
    assert ops_from_error(softmax) == ["SparseSoftmaxXentWithLogitsOp"]
    stamp = (
        "RuntimeError: TensorFlow op model/dense/Timestamp failed (FailedPreconditionError): "
        "Timestamp cannot be called when determinism is enabled"
    )
    assert ops_from_error(stamp) == ["Timestamp"]
    assert ops_from_error("ValueError: shapes differ") == []


@pytest.mark.slow
def test_verify_json_on_the_cpu_is_reproducible_and_exits_0():
    proc = run_cli("verify", "--model", "mlp", *TINY, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"default", "deterministic"}
    for verdict in data.values():
        assert set(verdict) >= VERDICT_KEYS
        assert verdict["reproducible"] is True
        assert verdict["first_divergent_iteration"] is None
        assert verdict["max_abs_weight_diff"] == 0.0
        assert verdict["nondeterministic_ops"] == []


@pytest.mark.slow
def test_verify_exits_1_and_lists_ops_when_deterministic_mode_does_not_reproduce(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "nnr_unseeded.py").write_text(PLUGIN)
    info = plugin / "nnr_unseeded-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnr-unseeded\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nnr_profile.workloads]\nunseeded = nnr_unseeded\n")
    env = cli_env()
    env["PYTHONPATH"] = str(plugin)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnr_profile.cli",
            "verify",
            "--model",
            "unseeded",
            *TINY,
            "--modes",
            "deterministic",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    verdict = json.loads(proc.stdout)["deterministic"]
    assert verdict["reproducible"] is False
    assert verdict["first_divergent_iteration"] == 0
    assert verdict["max_abs_weight_diff"] > 0
    assert verdict["nondeterministic_ops"] == ["put_"]


def test_verify_rejects_one_run():
    proc = run_cli("verify", "--model", "mlp", "--gpu", "cpu", "--runs", "1")
    assert proc.returncode == 2
    assert "'--runs': must be a whole number of at least 2, not 1" in proc.stderr
