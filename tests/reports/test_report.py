"""write_report on real SQLite stores: files, failures, hand-edited values, escaping, registry."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from nnr_profile.core.errors import NnrError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.reports.report import REPORT_TABLES, register_report_table, write_report
from nnr_profile.store.database import Store

GPU = {"host": "node1", "gpu": {"arch": "Hopper", "name": "NVIDIA H100 80GB HBM3"}}


def _record(store, workload, mode, repeat, times, status="ok", args=None, error=None, **spec):
    trial = TrialSpec(
        framework="torch",
        workload=workload,
        mode=MODES[mode],
        gpu_index=0,
        batch_size=8,
        iterations=len(times) or 3,
        repeat=repeat,
        workload_args=args or {},
        **spec,
    )
    store.record(TrialResult(trial, status, times_ms=list(times), environment=GPU, error=error))


def _store(path, cells, repeats=3, seed=0):
    """cells: {(workload, args as tuple of pairs, mode): median ms}; all trials succeed."""
    rng = np.random.default_rng(seed)
    with Store(path) as store:
        for repeat in range(repeats):
            for (workload, args, mode), median in cells.items():
                times = median * np.exp(rng.normal(0, 0.01)) * (1 + rng.normal(0, 0.01, 20))
                _record(store, workload, mode, repeat, times, args=dict(args))
    return path


def test_report_writes_tables_paper_table_and_figure(tmp_path):
    db = _store(
        tmp_path / "nnr.db",
        {("mlp", (), "default"): 10.0, ("mlp", (), "deterministic"): 13.0},
    )
    report = write_report(db, tmp_path / "out")
    names = {p.name for p in report.files}
    assert {"overhead.csv", "overhead.md", "overhead.tex", "overhead_paper.tex"} <= names
    assert {"overhead.png", "overhead.pdf"} <= names
    assert "failures.csv" not in names
    row = pd.read_csv(tmp_path / "out" / "overhead.csv").iloc[0]
    assert abs(row["overhead_pct"] - 30) < 3 and row["n_pairs"] == 3
    markdown = (tmp_path / "out" / "overhead.md").read_text()
    assert f"{row['ratio']:.2f}x" in markdown and f"{row['overhead_pct']:+.1f}" in markdown
    paper = (tmp_path / "out" / "overhead_paper.tex").read_text()
    assert "\\toprule" in paper and "\\bottomrule" in paper and "@{}llrrr@{}" in paper
    assert "H100 80GB HBM3" in paper and "$\\times$" in paper


def test_rows_that_differ_only_in_workload_args_are_told_apart(tmp_path):
    db = _store(
        tmp_path / "nnr.db",
        {
            ("mediumcnn", (("kernel", 3),), "default"): 10.0,
            ("mediumcnn", (("kernel", 3),), "deterministic"): 12.0,
            ("mediumcnn", (("kernel", 5),), "default"): 20.0,
            ("mediumcnn", (("kernel", 5),), "deterministic"): 26.0,
        },
    )
    write_report(db, tmp_path / "out")
    markdown = (tmp_path / "out" / "overhead.md").read_text()
    assert "kernel=3" in markdown and "kernel=5" in markdown
    assert "mediumcnn kernel=5" in (tmp_path / "out" / "overhead_paper.tex").read_text()


def test_failures_are_keyed_by_the_full_cell_and_written_with_their_arguments(tmp_path):
    db = _store(
        tmp_path / "nnr.db",
        {
            ("mediumcnn", (("kernel", 3),), "default"): 10.0,
            ("mediumcnn", (("kernel", 3),), "deterministic"): 12.0,
            ("mediumcnn", (("kernel", 5),), "default"): 20.0,
        },
    )
    with Store(db) as store:
        _record(store, "mediumcnn", "deterministic", 0, [], "failed", {"kernel": 5}, "boom")
    report = write_report(db, tmp_path / "out")
    table = report.overhead.set_index("workload_args")
    assert table.loc['{"kernel": 5}', "n_failed"] == 1
    assert table.loc['{"kernel": 3}', "n_failed"] == 0
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert (
        failures.loc[0, "workload_args"] == '{"kernel": 5}' and failures.loc[0, "error"] == "boom"
    )


def test_a_store_whose_trials_all_failed_still_writes_failures_csv(tmp_path):
    db = tmp_path / "nnr.db"
    with Store(db) as store:
        for mode in ("default", "deterministic"):
            _record(store, "mlp", mode, 0, [], "failed", error=f"{mode} broke")
    with pytest.raises(NnrError, match=r"failures\.csv"):
        write_report(db, tmp_path / "out")
    assert len(pd.read_csv(tmp_path / "out" / "failures.csv")) == 2


def test_hand_edited_times_are_left_out_and_named(tmp_path):
    db = _store(
        tmp_path / "nnr.db", {("mlp", (), "default"): 10.0, ("mlp", (), "deterministic"): 11.0}
    )
    with sqlite3.connect(db) as conn:
        for iteration, value in ((0, "abc"), (1, 0), (2, -5)):
            conn.execute(
                "UPDATE iterations SET time_ms = ? WHERE trial_id = 1 AND iteration = ?",
                (value, iteration),
            )
    report = write_report(db, tmp_path / "out")
    skipped = pd.read_csv(tmp_path / "out" / "skipped_iterations.csv")
    assert list(skipped["iteration"]) == [0, 1, 2]
    assert list(skipped["reason"]) == ["not a number", "not positive", "not positive"]
    assert any("3 iteration time(s) left out" in note and "'abc'" in note for note in report.notes)
    row = report.overhead.iloc[0]
    assert row["baseline_median_ms"] > 5 and row["n_pairs"] == 3


def test_names_that_could_break_a_table_or_run_in_a_spreadsheet_are_escaped(tmp_path):
    db = _store(
        tmp_path / "nnr.db",
        {
            ("=HYPERLINK(x)|a\nb", (), "default"): 10.0,
            ("=HYPERLINK(x)|a\nb", (), "deterministic"): 11.0,
        },
    )
    write_report(db, tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "overhead.csv")
    assert csv.loc[0, "workload"].startswith("'=")
    lines = (tmp_path / "out" / "overhead.md").read_text().splitlines()
    rows = [line for line in lines if "HYPERLINK" in line]
    assert len(rows) == 1 and "\\|a b" in rows[0]
    assert "HYPERLINK(x)|a b" in (tmp_path / "out" / "overhead.tex").read_text()


def test_a_registered_table_is_built_and_written_by_the_loop(tmp_path):
    db = _store(
        tmp_path / "nnr.db", {("mlp", (), "default"): 10.0, ("mlp", (), "deterministic"): 11.0}
    )

    def count(inputs):
        return inputs.per_trial.groupby("mode").size().rename("trials").reset_index()

    def write(table, out):
        path = out / "trial_counts.csv"
        table.to_csv(path, index=False)
        return [path]

    register_report_table("trial_counts", count, write)
    try:
        report = write_report(db, tmp_path / "out")
    finally:
        REPORT_TABLES.unregister("trial_counts")
    assert list(report.tables["trial_counts"]["trials"]) == [3, 3]
    assert (tmp_path / "out" / "trial_counts.csv").exists()


def test_kernel_tables_are_spreadsheet_safe(tmp_path):
    db = _store(
        tmp_path / "nnr.db", {("mlp", (), "default"): 10.0, ("mlp", (), "deterministic"): 11.0}
    )
    with Store(db) as store:
        for mode, total in (("default", 1000), ("deterministic", 3000)):
            trial = TrialSpec(
                framework="torch",
                workload="mlp",
                mode=MODES[mode],
                gpu_index=0,
                batch_size=8,
                iterations=3,
                collector="torch-profiler",
            )
            kernels = [{"name": "=cmd|' /C calc'!A0", "calls": 3, "total_ns": total}]
            store.record(
                TrialResult(trial, "ok", times_ms=[1.0] * 3, environment=GPU, kernels=kernels)
            )
    report = write_report(db, tmp_path / "out")
    assert {"kernels.csv", "attribution.csv", "attribution.png"} <= {p.name for p in report.files}
    for name in ("kernels.csv", "attribution.csv"):
        kernel = pd.read_csv(tmp_path / "out" / name)["kernel"].iloc[0]
        assert kernel.startswith("'="), name
    attribution = pd.read_csv(tmp_path / "out" / "attribution.csv")
    assert attribution.loc[0, "delta_ms_per_iter"] == pytest.approx(2000 / 3 / 1e6)
