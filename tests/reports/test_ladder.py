"""The knob ladder in the report: ladder order, each step over the previous one, the waterfall."""

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, run_cli

from nnr_profile.core.modes import MODES, ladder
from nnr_profile.core.specs import TrialResult, TrialSpec
from nnr_profile.reports.kernels import attribution_table, kernel_table
from nnr_profile.reports.ladder import (
    LADDER_COLUMNS,
    LADDER_MODES,
    ladder_pairs,
    step_label,
    step_table,
    with_steps,
)
from nnr_profile.reports.ladder_plots import ladder_figures
from nnr_profile.reports.overhead import overhead_from_trials
from nnr_profile.reports.report import write_report
from nnr_profile.store.database import Store

GPU = {"host": "node1", "gpu": {"arch": "Hopper", "name": "NVIDIA H100 80GB HBM3"}}
STEPS = {mode.name: mode for mode in ladder()}
FACTORS = {
    "default": 1.0,
    "step1_cublas_workspace": 1.02,
    "step2_cudnn_deterministic": 1.30,
    "step3_deterministic_algorithms": 1.35,
    "deterministic": 1.70,
}


def _per_trial(factors=FACTORS, repeats=4, seed=0, framework="torch"):
    """Store-shaped per-trial rows (as `load.per_trial_frame` gives): one cell, ladder modes."""
    rng = np.random.default_rng(seed)
    rows = []
    for repeat in range(repeats):
        drift = np.exp(rng.normal(0, 0.05))  # shared by the modes of one repeat: pairing removes it
        for mode, factor in factors.items():
            rows.append(
                {
                    "trial_id": len(rows) + 1,
                    "framework": framework,
                    "workload": "resnet50",
                    "workload_args": "{}",
                    "batch_size": 8,
                    "image_size": None,
                    "device": "gpu0",
                    "host": "node1",
                    "gpu_arch": "Hopper",
                    "gpu_name": "NVIDIA H100 80GB HBM3",
                    "mode": mode,
                    "repeat": repeat,
                    "median_ms": 10.0 * factor * drift * np.exp(rng.normal(0, 0.005)),
                    "iqr_ratio": 0.01,
                    "n_iterations": 20,
                }
            )
    return pd.DataFrame(rows)


def test_ladder_pairs_and_step_labels_follow_the_ladder():
    assert LADDER_MODES[0] == "default" and LADDER_MODES[-1] == "deterministic"
    assert ladder_pairs(["deterministic", "fast", "default", "step1_cublas_workspace"]) == [
        ("default", "step1_cublas_workspace"),
        ("default", "deterministic"),
        ("step1_cublas_workspace", "deterministic"),
    ]
    assert step_label("torch", "step3_deterministic_algorithms", "deterministic") == (
        "fill_uninitialized_memory"
    )
    assert step_label("torch", "default", "step2_cudnn_deterministic") == (
        "cublas_workspace+cudnn_deterministic"
    )
    assert "tf_op_determinism" in step_label("tf", "default", "deterministic")


def test_each_step_is_recovered_with_its_interval_and_the_steps_chain_to_the_total():
    steps = step_table(_per_trial())
    assert list(steps.columns) == LADDER_COLUMNS
    assert list(steps["mode"]) == list(LADDER_MODES[1:])
    assert list(steps["step_from"]) == list(LADDER_MODES[:-1])
    assert list(steps["step"]) == [1, 2, 3, 4]
    names = list(FACTORS)
    for row in steps.itertuples():
        true = (FACTORS[row.mode] / FACTORS[names[names.index(row.mode) - 1]] - 1) * 100
        assert abs(row.step_overhead_pct - true) < 1.0, (row.mode, true)
        assert row.step_ci_low_pct < row.step_overhead_pct < row.step_ci_high_pct
        assert row.n_pairs == 4 and row.step_p_holm >= row.step_p_value
    chained = np.prod(steps["step_ratio"].to_numpy())
    assert chained == pytest.approx(steps["ratio"].iloc[-1], rel=1e-9)
    assert steps["default_median_ms"].notna().all()


def test_the_overhead_table_keeps_ladder_order_and_carries_the_step_columns():
    per_trial = _per_trial()
    table = overhead_from_trials(per_trial)
    assert list(table["mode"]) == list(LADDER_MODES[1:])
    table = with_steps(table, step_table(per_trial))
    assert list(table["step_from"]) == list(LADDER_MODES[:-1])
    first = table.iloc[0]
    assert first["step_overhead_pct"] == pytest.approx(first["overhead_pct"])
    plain = with_steps(table, step_table(_per_trial({"default": 1.0, "deterministic": 1.5})))
    assert plain["step_overhead_pct"].isna().all() and (plain["step_from"] == "").all()


def test_a_failed_step_keeps_its_row_and_the_next_step_has_no_figure():
    per_trial = _per_trial()
    failed = per_trial[per_trial["mode"] == "step2_cudnn_deterministic"].assign(status="failed")
    ok = per_trial[per_trial["mode"] != "step2_cudnn_deterministic"]
    steps = step_table(ok, failed).set_index("mode")
    assert "no successful mode trial" in steps.loc["step2_cudnn_deterministic", "note"]
    after = steps.loc["step3_deterministic_algorithms"]
    assert after["step_from"] == "step2_cudnn_deterministic" and np.isnan(after["step_ratio"])
    assert "no successful baseline trial" in after["note"]
    assert steps.loc["deterministic", "step_ratio"] == pytest.approx(1.70 / 1.35, rel=0.02)


def test_tensorflow_cells_step_from_default_to_deterministic():
    torch = _per_trial()
    tf = _per_trial({"default": 1.0, "deterministic": 1.2}, framework="tf", seed=1)
    tf["trial_id"] += len(torch)
    steps = step_table(pd.concat([torch, tf], ignore_index=True))
    tf_steps = steps[steps["framework"] == "tf"]
    assert list(tf_steps["step_from"]) == ["default"] and list(tf_steps["step"]) == [1]
    assert step_table(tf).empty  # no intermediate step anywhere: no ladder table


def test_the_waterfall_has_a_panel_per_cell_and_titles_inside_the_page(tmp_path):
    torch = _per_trial()
    other = _per_trial(seed=2).assign(workload="a_workload_with_a_rather_long_name_to_wrap")
    other["trial_id"] += len(torch)
    steps = step_table(pd.concat([torch, other], ignore_index=True))
    figures = list(ladder_figures(steps))
    assert len(figures) == 1
    fig = figures[0]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2
    fig.canvas.draw()
    page = fig.bbox
    for ax in panels:
        box = ax.title.get_window_extent()
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1, ax.get_title()
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks[0] == "default" and ticks[-2] == "fill_uninitialized_memory"


def test_a_huge_interval_is_cut_with_an_arrowhead_not_allowed_to_flatten_the_bars():
    steps = step_table(_per_trial(repeats=2))
    steps.loc[1, "step_ci_high_pct"] = 1e6
    fig = next(ladder_figures(steps))
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 200
    heads = [line for line in ax.get_lines() if line.get_marker() == "^"]
    assert len(heads) == 1 and len(heads[0].get_xdata()) == 1


def test_kernel_tables_list_modes_in_ladder_order():
    modes = ["deterministic", "step2_cudnn_deterministic", "default", "step1_cublas_workspace"]
    kernels = pd.DataFrame(
        [
            {
                "trial_id": i,
                "framework": "torch",
                "workload": "resnet50",
                "workload_args": "{}",
                "batch_size": 8,
                "image_size": None,
                "device": "gpu0",
                "gpu_arch": "Hopper",
                "gpu_name": "H100",
                "collector": "torch-profiler",
                "mode": mode,
                "name": "gemm",
                "short_name": "gemm",
                "calls": 5,
                "total_ns": 1000 * (i + 1),
                "iterations": 5,
            }
            for i, mode in enumerate(modes)
        ]
    )
    assert list(kernel_table(kernels)["mode"]) == [m for m in LADDER_MODES if m in modes]
    assert list(attribution_table(kernels)["mode"]) == [m for m in LADDER_MODES[1:] if m in modes]


def _record_ladder(path, repeats=3, seed=0):
    rng = np.random.default_rng(seed)
    with Store(path) as store:
        for repeat in range(repeats):
            for name, factor in FACTORS.items():
                spec = TrialSpec(
                    framework="torch",
                    workload="resnet50",
                    mode=STEPS[name],
                    gpu_index=0,
                    batch_size=8,
                    iterations=20,
                    repeat=repeat,
                )
                times = 10.0 * factor * (1 + rng.normal(0, 0.01, 20))
                store.record(TrialResult(spec, "ok", times_ms=list(times), environment=GPU))
    return path


def _read_csv(path):
    """A report CSV with the spreadsheet guard (a leading quote on formula-like names) taken off."""
    frame = pd.read_csv(path)
    for column in ("mode", "step_from", "step_label", "baseline_mode"):
        if column in frame.columns:
            frame[column] = frame[column].fillna("").str.removeprefix("'")
    return frame


def test_the_report_writes_the_ladder_table_figure_and_paper_column(tmp_path):
    db = _record_ladder(tmp_path / "nnr.db")
    report = write_report(db, tmp_path / "out")
    names = {p.name for p in report.files}
    assert {"ladder.csv", "ladder.md", "ladder.png", "ladder.pdf"} <= names
    ladder_csv = _read_csv(tmp_path / "out" / "ladder.csv")
    assert list(ladder_csv["mode"]) == list(LADDER_MODES[1:])
    overhead = _read_csv(tmp_path / "out" / "overhead.csv")
    assert list(overhead["mode"]) == list(LADDER_MODES[1:])
    assert overhead["step_overhead_pct"].notna().all()
    paper = (tmp_path / "out" / "overhead_paper.tex").read_text()
    assert r"Step (\%) [95\% CI]" in paper
    order = ["step1", "step2", "step3", r"& deterministic &"]
    assert [paper.index(m) for m in order] == sorted(paper.index(m) for m in order)
    markdown = (tmp_path / "out" / "ladder.md").read_text()
    assert "fill_uninitialized_memory" in markdown


def test_without_a_ladder_there_is_no_ladder_file_or_paper_column(tmp_path):
    with Store(tmp_path / "nnr.db") as store:
        for repeat in range(3):
            for mode, ms in (("default", 10.0), ("deterministic", 12.0)):
                spec = TrialSpec("torch", "mlp", MODES[mode], gpu_index=0, repeat=repeat)
                times = list(ms * (1 + 0.01 * np.random.default_rng(repeat).random(5)))
                store.record(TrialResult(spec, "ok", times_ms=times, environment=GPU))
    report = write_report(tmp_path / "nnr.db", tmp_path / "out")
    assert not any(p.name.startswith("ladder") for p in report.files)
    assert "Step" not in (tmp_path / "out" / "overhead_paper.tex").read_text()


@pytest.mark.slow
def test_a_real_cpu_ladder_sweep_reports_every_step_in_order(db, tmp_path):
    proc = run_cli(
        "run", "--model", "smallcnn", "--modes", "ladder", *TINY, "--repeats", "2", "--db", str(db)
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "report"
    proc = run_cli("report", "--db", str(db), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    steps = _read_csv(out / "ladder.csv")
    assert list(steps["mode"]) == list(LADDER_MODES[1:])
    assert list(steps["step_from"]) == list(LADDER_MODES[:-1])
    assert (steps["n_pairs"] == 2).all() and steps["step_ci_low_pct"].notna().all()
    assert (out / "ladder.png").stat().st_size > 10_000
    overhead = _read_csv(out / "overhead.csv")
    assert list(overhead["mode"]) == list(LADDER_MODES[1:])
    assert overhead["energy_overhead_pct"].isna().all()
    assert overhead["note"].str.contains("energy not measured").all()
    assert r"Step (\%)" in (out / "overhead_paper.tex").read_text()
