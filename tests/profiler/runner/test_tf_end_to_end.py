"""TensorFlow through the real CLI: run -> store -> report, --framework all, ops that refuse
determinism, bit-for-bit repeats, and a machine without TensorFlow."""

import importlib.util
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from conftest import TINY, run_cli

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.process import spawn_trial

pytestmark = pytest.mark.slow
needs_tf = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)
TF_TINY = [
    *TINY[: TINY.index("--iterations")],
    "--iterations",
    "2",
    "--warmup",
    "1",
    "--repeats",
    "1",
]
HAS_JAX = importlib.util.find_spec("jax") is not None
"""`--framework all` runs JAX too where it is installed."""
NO_TF = "import sys\nsys.modules['tensorflow'] = None  # as if TensorFlow were not installed\n"


def _trials(db):
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT * FROM trials", conn)


@needs_tf
def test_tf_run_then_report_with_resnet50_and_the_keras_mnist_cnn(db, tmp_path):
    proc = run_cli(
        "run", "--model", "resnet50,keras_mnist_cnn", "--framework", "tf", *TF_TINY, "--db", str(db)
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 trial(s) run, 0 already in the store, 0 failed" in proc.stdout
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "overhead.csv")
    assert sorted(table["workload"]) == ["keras_mnist_cnn", "resnet50"]
    assert set(table["framework"]) == {"tf"} and (table["n_iterations"] == 2).all()
    assert "tf: fast = default" in proc.stdout
    assert "tf: fast = default" in (out / "overhead.md").read_text(encoding="utf-8")
    with sqlite3.connect(db) as conn:
        environments = [row[0] for row in conn.execute("SELECT data FROM environments")]
    assert any('"tensorflow": "2.' in env and "build_info" in env for env in environments)


@needs_tf
def test_framework_all_gives_a_row_per_framework_and_skips_tf_fast(db, tmp_path):
    proc = run_cli(
        "run",
        "--model",
        "smallcnn",
        "--framework",
        "all",
        "--modes",
        "default,fast,deterministic",
        *TF_TINY,
        "--db",
        str(db),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{7 if HAS_JAX else 5} trial(s) run" in proc.stdout
    assert "tf: fast = default (TensorFlow autotunes already)" in proc.stderr
    proc = run_cli("report", "--db", str(db), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "r" / "overhead.csv")
    main = table[(table["baseline_mode"] == "default") & (table["mode"] == "deterministic")]
    assert sorted(main["framework"]) == (["jax", "tf", "torch"] if HAS_JAX else ["tf", "torch"])
    assert "fast" not in set(table.loc[table["framework"] == "tf", "baseline_mode"])


@needs_tf
def test_an_op_that_refuses_determinism_is_a_failed_trial_naming_it(db):
    proc = run_cli(
        "run",
        "--model",
        "stamps_time",
        "--framework",
        "tf",
        *TF_TINY,
        "--db",
        str(db),
        plugins=True,
    )
    assert proc.returncode == 1, proc.stderr
    assert "1 failed" in proc.stdout
    trials = _trials(db).set_index("mode")
    assert trials.loc["default", "status"] == "ok"
    failed = trials.loc["deterministic"]
    assert failed["status"] == "failed"
    assert "TensorFlow op" in failed["error"] and "Timestamp" in failed["error"]
    assert "determinism is enabled" in failed["error"] and "\n" not in failed["error"]


@needs_tf
def test_a_deterministic_tf_trial_repeats_bit_for_bit(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = TrialSpec(
        "tf", "keras_mnist_cnn", MODES["deterministic"], batch_size=2, image_size=12, iterations=3
    )
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: spawn_trial(spec, 300), range(2))
    assert first.status == second.status == "ok", first.error
    assert first.knobs_applied["op_determinism"].endswith("enable_op_determinism")
    assert first.knobs_applied["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # from the child's env
    assert first.losses == second.losses
    assert first.weights_hash == second.weights_hash


def _without_tf(tmp_path, monkeypatch):
    site = tmp_path / "no_tf"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_TF, encoding="utf-8")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    )


def test_without_tensorflow_tf_says_how_to_install_and_all_runs_the_rest(db, tmp_path, monkeypatch):
    _without_tf(tmp_path, monkeypatch)
    proc = run_cli("run", "--model", "resnet50", "--framework", "tf", "--db", str(db))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "'tf' is not installed" in lines[0] and "pip install" in lines[0]
    assert not db.exists()
    proc = run_cli("list")
    assert "tf     not installed" in proc.stdout and "tf/resnet50" in proc.stdout
    proc = run_cli("run", "--model", "mlp", "--framework", "all", *TF_TINY, "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "skipping tf: not installed" in proc.stderr and "pip install" in proc.stderr
    assert f"{4 if HAS_JAX else 2} trial(s) run" in proc.stdout
    assert set(_trials(db)["framework"]) == ({"torch", "jax"} if HAS_JAX else {"torch"})


@needs_tf
def test_tf_verify_reproduces_mlp_and_names_the_op_that_refuses(tmp_path):
    tiny = ["--framework", "tf", "--gpu", "cpu", "--batch-size", "2", "--iterations", "3"]
    proc = run_cli("verify", "--model", "mlp", *tiny, "--json")
    assert proc.returncode == 0, proc.stderr
    verdicts = json.loads(proc.stdout)
    assert verdicts["deterministic"]["reproducible"] is True
    assert verdicts["deterministic"]["max_abs_weight_diff"] == 0.0
    proc = run_cli("verify", "--model", "stamps_time", *tiny, "--json", plugins=True)
    assert proc.returncode == 1, proc.stderr
    refused = json.loads(proc.stdout)["deterministic"]
    assert refused["reproducible"] is False and refused["nondeterministic_ops"] == ["Timestamp"]
    assert "Traceback" not in proc.stderr


@needs_tf
def test_tf_variability_control_is_exactly_repeatable(db, tmp_path):
    proc = run_cli(
        "variability",
        "--framework",
        "tf",
        "--model",
        "mlp",
        "--dataset",
        "digits",
        "--replicas",
        "2",
        "--settings",
        "algo+impl,control",
        "--epochs",
        "1",
        "--gpu",
        "cpu",
        "--jobs",
        "2",
        "--db",
        str(db),
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 replica(s) run, 0 already in the store, 0 failed" in proc.stdout
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "variability.csv").set_index("setting")
    assert set(table["framework"]) == {"tf"}
    control, free = table.loc["control"], table.loc["algo+impl"]
    assert control["acc_std"] == 0 and control["churn"] == 0 and control["l2_mean"] == 0
    assert free["churn"] > 0 and free["l2_mean"] > 0


@needs_tf
def test_tf_replica_reads_mnist_through_torchvision(db, tmp_path):
    from conftest import write_mnist

    data = write_mnist(tmp_path / "data")
    args = ["--framework", "tf", "--model", "lenet", "--dataset", "mnist", "--data-dir", str(data)]
    proc = run_cli(
        "variability", *args, "--replicas", "1", "--settings", "control", "--epochs", "1",
        "--batch-size", "16", "--gpu", "cpu", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "1 replica(s) run, 0 already in the store, 0 failed" in proc.stdout
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()
    assert count == 32
