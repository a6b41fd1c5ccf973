"""`--preset`: the study's protocols as option values; explicit options win; the report says so."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import assert_one_line_usage_error, run_cli

from nnr_profile.core.presets import PRESETS, STUDY_OVERHEAD_MODELS, preset_settings
from nnr_profile.workloads.registry import canonical_name, load_workloads


def test_the_study_preset_names_every_model_of_overhead_test_and_each_exists():
    settings = preset_settings("study", "run")
    assert settings["model"].split(",") == list(STUDY_OVERHEAD_MODELS)
    assert (settings["image_size"], settings["batch_size"], settings["iterations"]) == (
        224,
        128,
        100,
    )
    known = load_workloads()
    for name in STUDY_OVERHEAD_MODELS:
        assert ("tf", canonical_name(name)) in known and ("torch", canonical_name(name)) in known


def test_a_preset_of_another_command_or_an_unknown_one_is_one_line():
    assert_one_line_usage_error(
        run_cli("run", "--preset", "study-smallcnn-cifar10"), "--preset", "is a variability preset"
    )
    assert_one_line_usage_error(run_cli("run", "--preset", "nosuch"), "unknown preset 'nosuch'")


def test_list_presets_shows_what_each_sets():
    proc = run_cli("list", "--presets")
    assert proc.returncode == 0, proc.stderr
    for name in PRESETS:
        assert name in proc.stdout
    assert "image_size=224" in proc.stdout


@pytest.mark.slow
def test_a_tiny_study_run_keeps_the_preset_where_no_option_overrides_it(tmp_path):
    db = tmp_path / "nnr.db"
    proc = run_cli(
        "run", "--preset", "study", "--framework", "torch", "--model", "smallcnn",
        "--image-size", "32", "--batch-size", "2", "--iterations", "2", "--warmup", "1",
        "--repeats", "2", "--gpu", "cpu", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = run_cli("report", "--db", str(db), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert "rows with preset study: the study's overhead protocol" in report.stdout
    table = pd.read_csv(tmp_path / "report" / "overhead.csv")
    (row,) = table.itertuples()
    assert row.preset == "study" and row.mode == "deterministic" and row.workload == "smallcnn"
    assert row.batch_size == 2 and row.n_trials == 2


@pytest.mark.slow
def test_a_variability_preset_is_recorded_and_the_report_names_it(tmp_path):
    db = tmp_path / "nnr.db"
    proc = run_cli(
        "variability", "--preset", "study-smallcnn-cifar10", "--framework", "torch",
        "--model", "mlp", "--dataset", "digits", "--replicas", "2", "--settings", "control",
        "--epochs", "1", "--gpu", "cpu", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = run_cli("report", "--db", str(db), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert "rows with preset study-smallcnn-cifar10: the study's smallcnn.py" in report.stdout
    (row,) = pd.read_csv(tmp_path / "report" / "variability.csv").itertuples()
    assert row.preset == "study-smallcnn-cifar10" and row.workload == "mlp"
    assert row.learning_rate == 4e-4 and row.batch_size == 128 and row.epochs == 1
