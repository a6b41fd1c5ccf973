"""The notebook API: open a store, get the report's tables as DataFrames."""

import re
from pathlib import Path

import numpy as np
import pytest

from nnr_profile.api import open_store
from nnr_profile.core.errors import NnrError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.store.database import Store
from nnr_profile.studies.replica import ReplicaResult, ReplicaSpec

README = Path(__file__).resolve().parents[2] / "README.md"


def _trial(mode, repeat, ms, collector="timing", kernels=()):
    spec = TrialSpec("torch", "mlp", MODES[mode], repeat=repeat, iterations=5, collector=collector)
    rng = np.random.default_rng(repeat)
    times = list(ms * (1 + 0.01 * rng.standard_normal(5)))
    return TrialResult(spec, "ok", times_ms=times, losses=[0.1] * 5, kernels=list(kernels))


def _replica(setting, replica, predictions):
    spec = ReplicaSpec("torch", "mlp", "mnist", setting, replica, replica, 0, MODES["default"])
    labels = [0, 1, 0, 1]
    accuracy = float(np.mean(np.equal(labels, predictions)))
    weights = np.full(3, replica, dtype=np.float32)
    return ReplicaResult(spec, "ok", accuracy, list(predictions), labels, [0.2], weights=weights)


def fill(path):
    """A store with default and deterministic timing trials, kernel trials and replicas."""
    with Store(path) as store:
        for repeat in range(3):
            store.record(_trial("default", repeat, 10.0))
            store.record(_trial("deterministic", repeat, 15.0))
        for mode, ns in (("default", 1000), ("deterministic", 3000)):
            gemm = {"name": "gemm", "short_name": "gemm", "calls": 5, "total_ns": ns}
            store.record(_trial(mode, 0, 10.0, "torch-profiler", [gemm]))
        for replica, predictions in enumerate(([0, 1, 0, 1], [0, 1, 1, 1], [1, 1, 0, 1])):
            store.record_replica(_replica("ALGO", replica, predictions))
    return path


def test_the_tables_are_the_reports_tables(tmp_path):
    db = fill(tmp_path / "nnr.db")
    with open_store(db) as results:
        assert len(results.trials()) == 8
        assert len(results.iterations()) == 40
        overhead = results.overhead()
        kernels = results.kernels()
        variability = results.variability()
        assert "overhead" in results.table_names()
        assert results.table("failures").empty
    row = overhead[overhead["mode"] == "deterministic"].iloc[0]
    assert row["baseline_mode"] == "default" and row["ratio"] == pytest.approx(1.5, rel=0.05)
    det = kernels[kernels["mode"] == "deterministic"]
    assert det["time_ms_per_iter"].tolist() == [pytest.approx(3000 / 5 / 1e6)]
    assert variability.loc[0, "setting"] == "ALGO" and variability.loc[0, "churn"] > 0


def test_an_unknown_table_or_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(NnrError, match="no results store"):
        open_store(tmp_path / "absent.db")
    results = open_store(fill(tmp_path / "nnr.db"))
    with pytest.raises(NnrError, match="no report table 'overheads': name one of overhead"):
        results.table("overheads")
    results.close()


def test_the_readme_example_runs(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    fill(tmp_path / "nnr-results" / "nnr.db")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert not namespace["overhead"].empty
