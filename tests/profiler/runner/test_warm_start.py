"""Warm trial starts: forked from a server that imported the framework, the same numbers as cold."""

import json
import os
import sqlite3
import sys
import textwrap

import pytest

from nnr_profile.core.modes import MODES, parse_modes
from nnr_profile.core.specs import STATUS_OK, TrialSpec
from nnr_profile.profiler.runner.child import spawn_child
from nnr_profile.profiler.runner.process import spawn_trial
from nnr_profile.profiler.runner.sweep import SweepSpec, start_notes
from nnr_profile.profiler.runner.warm import WarmServer, WarmStartUnavailable, warm_preload
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("framework", "workload", "mode"),
    [
        ("torch", "smallcnn", "default"),
        ("torch", "smallcnn", "deterministic"),
        ("jax", "smallcnn", "deterministic"),
    ],
)
def test_warm_and_cold_trials_apply_the_same_knobs_and_give_the_same_numbers(
    framework, workload, mode
):
    if framework == "jax":
        pytest.importorskip("flax")
    spec = TrialSpec(framework, workload, MODES[mode], batch_size=4, warmup=1, iterations=3)
    cold, warm = (spawn_trial(spec, 300, start=start) for start in ("cold", "warm"))
    assert cold.status == warm.status == STATUS_OK, (cold.error, warm.error)
    assert cold.environment["trial_start"] == "cold" and warm.environment["trial_start"] == "warm"
    differ = {k for k in cold.environment if cold.environment[k] != warm.environment.get(k)}
    assert differ == {"trial_start"}
    assert cold.knobs_applied == warm.knobs_applied
    assert cold.losses == warm.losses and cold.weights_hash == warm.weights_hash
    assert len(warm.times_ms) == 3


def test_a_framework_not_shown_safe_to_fork_starts_cold_and_the_sweep_says_why():
    with pytest.raises(WarmStartUnavailable, match="TensorFlow starts its thread pools"):
        warm_preload("tf")
    assert "torch" in warm_preload("torch") and "jax" in warm_preload("jax")
    spec = SweepSpec(
        workloads=(("tf", "mlp"), ("torch", "mlp")),
        modes=tuple(parse_modes("default")),
        collectors=("timing", "nsys"),
    )
    warm = start_notes(spec, "warm")
    assert warm[0].startswith("trial starts: cold for tf: TensorFlow starts its thread pools")
    assert warm[1].startswith("trial starts: warm for torch")
    assert warm[2] == "trial starts: cold for nsys trials (the profiler starts them)"
    assert start_notes(spec, "cold") == [
        "trial starts: cold (a fresh interpreter per trial) for tf, torch"
    ]


def test_a_server_whose_imports_start_a_thread_refuses_to_fork(tmp_path, monkeypatch):
    (tmp_path / "threads_at_import.py").write_text(
        textwrap.dedent(
            """
            import threading, time
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(WarmStartUnavailable, match=r"started 1 thread\(s\); a fork is not safe"):
        WarmServer("torch", dict(os.environ), preload=("threads_at_import",))


def _trial_starts(db) -> list[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT e.data FROM trials t JOIN environments e ON e.id = t.environment_id"
        ).fetchall()
    return [json.loads(data).get("trial_start") for (data,) in rows]


@pytest.mark.parametrize("start", ["cold", "warm"])
def test_run_says_how_trials_start_and_each_trial_records_it(tmp_path, start):
    db = tmp_path / "nnr.db"
    common = ["--model", "mlp", "--gpu", "cpu", "--batch-size", "4", "--iterations", "2"]
    common += ["--warmup", "1", "--repeats", "1", "--db", str(db)]
    proc = run_cli("run", *common, "--trial-start", start)
    assert proc.returncode == 0, proc.stderr
    assert f"trial starts: {start}" in proc.stderr
    assert _trial_starts(db) == [start, start]


def test_a_bad_or_inapplicable_trial_start_is_refused_in_one_line(tmp_path):
    db = str(tmp_path / "nnr.db")
    bad = run_cli("run", "--model", "mlp", "--gpu", "cpu", "--db", db, "--trial-start", "hot")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "nnr-profile: error: --trial-start must be warm or cold, not 'hot'"
    slurm = run_cli("run", "--model", "mlp", "--launcher", "slurm", "--trial-start", "cold")
    assert slurm.returncode == 2 and "Traceback" not in slurm.stderr
    assert "--trial-start only applies to --launcher local" in slurm.stderr


DRAWS = """
from nnr_profile.profiler.runner.child import child_task


@child_task()
def draw(spec):
    import random

    import numpy

    return {"python": random.random(), "numpy": float(numpy.random.random())}
"""


def test_unseeded_draws_differ_between_warm_children_as_between_cold_ones(tmp_path, monkeypatch):
    (tmp_path / "nnr_draws.py").write_text(DRAWS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sys.modules.pop("nnr_draws", None)
    import nnr_draws

    draws = [spawn_child(nnr_draws.draw, {}, dict(os.environ), 120, warm="torch") for _ in "ab"]
    assert all(outcome.status == STATUS_OK for outcome in draws), [d.error for d in draws]
    first, second = (outcome.result for outcome in draws)
    assert first["python"] != second["python"] and first["numpy"] != second["numpy"]


XLA_PROBE = """
from nnr_profile.profiler.runner.child import child_task


@child_task()
def add(spec):
    import jax.numpy as jnp

    return {"sum": float(jnp.ones(2).sum())}
"""


def test_a_warm_jax_child_reads_xla_flags_itself_as_a_cold_one_does(tmp_path, monkeypatch):
    pytest.importorskip("jax")
    (tmp_path / "nnr_xla_probe.py").write_text(XLA_PROBE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sys.modules.pop("nnr_xla_probe", None)
    import nnr_xla_probe

    for warm in (None, "jax"):
        fine = spawn_child(nnr_xla_probe.add, {}, dict(os.environ), 120, warm=warm)
        assert fine.status == STATUS_OK and fine.result["sum"] == 2.0, fine.error
        env = dict(os.environ, XLA_FLAGS="--xla_no_such_flag_nnr=1")
        bad = spawn_child(nnr_xla_probe.add, {}, env, 120, warm=warm)
        assert "Unknown flag in XLA_FLAGS: --xla_no_such_flag_nnr" in bad.error, (warm, bad.error)
