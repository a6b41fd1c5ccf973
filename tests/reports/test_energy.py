"""Energy per iteration beside the time overhead, paired like it; "not measured" on a CPU."""

import numpy as np
import pandas as pd
import pytest

from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.reports.energy import (
    ENERGY_COLUMNS,
    NOT_MEASURED,
    energy_overhead,
    energy_per_trial,
    with_energy,
)
from nnr_profile.reports.overhead import overhead_from_trials
from nnr_profile.reports.report import write_report
from nnr_profile.store.database import Store

GPU = {"host": "node1", "gpu": {"arch": "Hopper", "name": "NVIDIA H100 80GB HBM3"}}
CPU = {"host": "laptop", "gpu": {"arch": "CPU", "name": "some CPU"}}


def _store(path, energy_per_iter, environment=GPU, repeats=3, iterations=20, seed=0):
    """default at 10 ms, deterministic at 15 ms; energy per iteration (J) per mode, or None."""
    rng = np.random.default_rng(seed)
    with Store(path) as store:
        for repeat in range(repeats):
            drift = np.exp(rng.normal(0, 0.05))  # shared by the repeat's modes: pairing removes it
            for mode, ms in (("default", 10.0), ("deterministic", 15.0)):
                gpu = None if environment is CPU else 0
                spec = TrialSpec(
                    "torch", "mlp", MODES[mode], gpu_index=gpu, repeat=repeat, iterations=iterations
                )
                per_iter = energy_per_iter[mode]
                energy = None if per_iter is None else per_iter * iterations * drift
                times = list(ms * (1 + 0.01 * rng.standard_normal(iterations)))
                result = TrialResult(
                    spec, "ok", times_ms=times, environment=environment, energy_j=energy
                )
                store.record(result)
    return path


def test_energy_overhead_is_paired_per_repeat_and_reported_beside_the_time(tmp_path):
    db = _store(tmp_path / "nnr.db", {"default": 2.0, "deterministic": 2.6})
    report = write_report(db, tmp_path / "out")
    row = report.overhead.iloc[0]
    assert row["energy_ratio"] == pytest.approx(1.3, rel=1e-6)  # the repeat's drift cancels
    assert row["energy_overhead_pct"] == pytest.approx(30.0, abs=1e-4)
    assert row["baseline_energy_per_iter_j"] == pytest.approx(2.0, rel=0.1)
    assert row["energy_n_pairs"] == 3 and NOT_MEASURED not in row["note"]
    columns = list(report.overhead.columns)
    assert columns.index("energy_overhead_pct") > columns.index("overhead_pct")
    markdown = (tmp_path / "out" / "overhead.md").read_text()
    assert "energy (%)" in markdown and "+30.0" in markdown
    paper = (tmp_path / "out" / "overhead_paper.tex").read_text()
    assert r"Energy (\%) [95\% CI]" in paper and "% Energy:" in paper


def test_on_the_cpu_energy_is_not_measured_never_zero(tmp_path):
    db = _store(tmp_path / "nnr.db", {"default": None, "deterministic": None}, environment=CPU)
    report = write_report(db, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "overhead.csv")
    for column in ENERGY_COLUMNS[:-1]:
        assert table[column].isna().all(), column
    assert (table["energy_n_pairs"] == 0).all()
    assert report.overhead["note"].str.contains(NOT_MEASURED).all()
    assert "Energy" not in (tmp_path / "out" / "overhead_paper.tex").read_text()
    assert "energy (%)" not in (tmp_path / "out" / "overhead.md").read_text()


def test_unusable_energies_are_left_out_not_turned_into_figures():
    per_trial = pd.DataFrame({"trial_id": [1, 2, 3, 4, 5]})
    trials = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "energy_j": [40.0, None, 0.0, -3.0, float("inf")],
            "iterations": [20, 20, 20, 20, 20],
        }
    )
    measured = energy_per_trial(per_trial, trials)
    assert list(measured["trial_id"]) == [1]
    assert measured["energy_per_iter_j"].tolist() == [2.0]
    assert energy_per_trial(per_trial, None).empty


def test_a_mode_without_energy_reads_not_measured_on_its_row_only():
    rows = []
    for repeat in range(3):
        for workload, mode, ms in (
            ("a", "default", 10.0),
            ("a", "deterministic", 12.0),
            ("b", "default", 10.0),
            ("b", "deterministic", 12.0),
        ):
            rows.append(
                {
                    "trial_id": len(rows) + 1,
                    "framework": "torch",
                    "workload": workload,
                    "workload_args": "{}",
                    "batch_size": 8,
                    "image_size": None,
                    "device": "gpu0",
                    "host": "h",
                    "gpu_arch": "Hopper",
                    "gpu_name": "H100",
                    "mode": mode,
                    "repeat": repeat,
                    "median_ms": ms * (1 + 0.01 * repeat),
                    "iqr_ratio": 0.01,
                    "n_iterations": 10,
                }
            )
    per_trial = pd.DataFrame(rows)
    measured = (per_trial["workload"] == "a").to_numpy()
    trials = pd.DataFrame(
        {
            "id": per_trial["trial_id"],
            "energy_j": np.where(measured, 10.0 * per_trial["median_ms"], np.nan),
            "iterations": 10,
        }
    )
    table = with_energy(overhead_from_trials(per_trial), energy_overhead(per_trial, trials))
    table = table.set_index("workload")
    assert table.loc["a", "energy_ratio"] == pytest.approx(1.2, rel=1e-6)
    assert NOT_MEASURED not in table.loc["a", "note"]
    assert np.isnan(table.loc["b", "energy_ratio"]) and NOT_MEASURED in table.loc["b", "note"]
