"""TensorFlow through the real CLI: run -> store -> report, --framework all, ops that refuse
determinism, bit-for-bit repeats, and a machine without TensorFlow."""

import importlib.util
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from conftest import TINY, run_cli

from nnr_profile.profiler.determinism import MODES
from nnr_profile.profiler.launcher import launch_trial
from nnr_profile.profiler.trial import TrialSpec

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
    assert "5 trial(s) run" in proc.stdout
    assert "tf: fast = default (TensorFlow autotunes already)" in proc.stderr
    proc = run_cli("report", "--db", str(db), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "r" / "overhead.csv")
    main = table[(table["baseline_mode"] == "default") & (table["mode"] == "deterministic")]
    assert sorted(main["framework"]) == ["tf", "torch"]
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
    assert proc.returncode == 0, proc.stderr
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
        first, second = pool.map(lambda _: launch_trial(spec, 300), range(2))
    assert first.status == second.status == "ok", first.error
    assert first.knobs_applied["op_determinism"].endswith("enable_op_determinism")
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
    assert "2 trial(s) run" in proc.stdout
    assert set(_trials(db)["framework"]) == {"torch"}
