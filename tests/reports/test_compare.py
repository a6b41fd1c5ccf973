"""`nnr-profile compare OLD NEW`: the change with a Welch interval, kernels, versions, the CLI."""

import json
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import page_tables, run_cli
from scipy import stats

from nnr_profile.reports.compare import (
    COMPARE_COLUMNS,
    compare_markdown,
    compare_tables,
    kernel_diff,
)
from nnr_profile.reports.overhead import GROUP_COLUMNS
from nnr_profile.store.versions import VERSION_COLUMNS, versions

CELL = {
    "framework": "torch",
    "workload": "resnet18",
    "workload_args": "{}",
    "batch_size": 4,
    "image_size": 0,
    "device": "cuda",
    "gpu_arch": "Ampere",
    "gpu_name": "NVIDIA A100",
}


def _side(d: np.ndarray, version: str, **cell) -> pd.DataFrame:
    """One overhead row from paired log ratios `d`, as the report's t-interval gives it."""
    n, mean, sd = len(d), d.mean(), d.std(ddof=1)
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    row = {
        **CELL,
        **cell,
        "baseline_mode": "default",
        "mode": "deterministic",
        "ratio": np.exp(mean),
        "ci_low_pct": (np.exp(mean - half) - 1) * 100,
        "ci_high_pct": (np.exp(mean + half) - 1) * 100,
        "n_pairs": n,
        "framework_version": version,
        "cuda": "12.1",
        "cudnn": "8902",
        "driver": "535.104",
    }
    return pd.DataFrame([row])


def test_the_change_interval_is_welchs_on_the_log_ratios():
    rng = np.random.default_rng(0)
    old_d = np.log(1.25) + rng.normal(0, 0.02, 5)
    new_d = np.log(1.60) + rng.normal(0, 0.05, 7)
    table = compare_tables(_side(old_d, "2.1.0"), _side(new_d, "2.4.1"))
    assert list(table.columns) == COMPARE_COLUMNS
    row = table.iloc[0]
    se2 = old_d.var(ddof=1) / 5 + new_d.var(ddof=1) / 7
    df = se2**2 / ((old_d.var(ddof=1) / 5) ** 2 / 4 + (new_d.var(ddof=1) / 7) ** 2 / 6)
    diff = new_d.mean() - old_d.mean()
    half = stats.t.ppf(0.975, df) * np.sqrt(se2)
    assert row["change"] == pytest.approx(np.exp(diff))
    assert row["change_ci_low"] == pytest.approx(np.exp(diff - half))
    assert row["change_ci_high"] == pytest.approx(np.exp(diff + half))
    welch = stats.ttest_ind(new_d, old_d, equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue)
    assert row["verdict"] == "more expensive"
    assert row["old_framework_version"] == "2.1.0" and row["new_framework_version"] == "2.4.1"


def test_cells_only_on_one_side_and_unclear_changes():
    rng = np.random.default_rng(1)
    same = np.log(1.2) + rng.normal(0, 0.05, 4)
    old = pd.concat([_side(same, "a"), _side(same, "a", gpu_name="NVIDIA V100")])
    new = pd.concat([_side(same + 0.001, "b"), _side(same, "b", gpu_name="NVIDIA H100")])
    table = compare_tables(old, new).set_index("gpu_name")
    assert table.loc["NVIDIA A100", "verdict"] == "no clear change"
    assert table.loc["NVIDIA V100", "verdict"] == "only old"
    assert table.loc["NVIDIA H100", "verdict"] == "only new"
    assert np.isnan(table.loc["NVIDIA H100", "change"])


def test_markdown_groups_by_version_columns():
    rng = np.random.default_rng(2)
    d = np.log(1.3) + rng.normal(0, 0.03, 4)
    old = pd.concat([_side(d, "2.1.0"), _side(d, "2.1.0", workload="resnet50")])
    new = pd.concat([_side(d, "2.4.1"), _side(d, "2.3.0", workload="resnet50")])
    text = compare_markdown(compare_tables(old, new), ["new_framework_version"])
    assert "### new_framework_version 2.3.0" in text and "### new_framework_version 2.4.1" in text
    assert "framework 2.1.0 -> 2.4.1" in text


def _kernels(names_ns: dict[str, int], iterations: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trial_id": 1,
                **{c: CELL[c] for c in GROUP_COLUMNS},
                "mode": "deterministic",
                "repeat": 0,
                "collector": "nsys",
                "iterations": iterations,
                "name": name,
                "short_name": name,
                "calls": iterations,
                "total_ns": ns,
            }
            for name, ns in names_ns.items()
        ]
    )


def test_kernel_diff_names_kernels_that_appeared_or_got_slower():
    old = _kernels({"gemm": 10_000_000, "scatter_add": 2_000_000})
    new = _kernels({"gemm": 10_000_000, "scatter_add": 6_000_000, "sort_keys": 3_000_000})
    diff = kernel_diff(old, new).set_index("kernel")
    assert diff.loc["sort_keys", "change"] == "added"
    assert diff.loc["scatter_add", "change"] == "slower"
    assert diff.loc["scatter_add", "delta_ms_per_iter"] == pytest.approx(0.4)
    assert diff.loc["gemm", "change"] == "same"
    assert set(diff["mode"]) == {"deterministic"}


def test_versions_come_from_the_fingerprint():
    fingerprint = {
        "framework": {"torch": "2.4.1", "cuda": "12.4", "cudnn": 90100},
        "gpu": {"driver": "550.54"},
    }
    assert versions(fingerprint, "torch") == {
        "framework_version": "2.4.1",
        "cuda": "12.4",
        "cudnn": "90100",
        "driver": "550.54",
    }
    assert set(versions({}, "tf")) == set(VERSION_COLUMNS)


@pytest.mark.slow
def test_compare_two_real_stores(tmp_path):
    old = tmp_path / "old.db"
    proc = run_cli(
        "run",
        "--model",
        "calibrate",
        "--workload-arg",
        "overhead=1.0",
        "--gpu",
        "cpu",
        "--batch-size",
        "4",
        "--iterations",
        "6",
        "--warmup",
        "2",
        "--repeats",
        "3",
        "--db",
        str(old),
    )
    assert proc.returncode == 0, proc.stderr
    new = tmp_path / "new.db"
    shutil.copy(old, new)
    with sqlite3.connect(new) as conn:
        for env_id, data in conn.execute("SELECT id, data FROM environments").fetchall():
            fingerprint = json.loads(data)
            fingerprint.setdefault("framework", {})["torch"] = "9.9.9"
            conn.execute(
                "UPDATE environments SET data = ? WHERE id = ?", (json.dumps(fingerprint), env_id)
            )
    out = tmp_path / "cmp"
    proc = run_cli(
        "compare", str(old), str(new), "--out", str(out), "--group-by", "new_framework_version"
    )
    assert proc.returncode == 0, proc.stderr
    assert "### new_framework_version 9.9.9" in proc.stdout
    for name in ("compare.csv", "compare.md", "compare.png", "compare.pdf", "compare.html"):
        assert (out / name).exists()
    page = page_tables(out / "compare.html")
    assert page.rows == {"compare": len(pd.read_csv(out / "compare.csv"))}
    assert len(page.images) == 1 and page.images[0].startswith("data:image/png;base64,")
    rows = json.loads(run_cli("compare", str(old), str(new), "--out", str(out), "--json").stdout)
    (row,) = rows
    assert row["change"] == pytest.approx(1.0) and row["verdict"] == "no clear change"
    assert row["new_framework_version"] == "9.9.9" and row["old_framework_version"] != "9.9.9"
    bad = run_cli("compare", str(old), str(new), "--group-by", "cuda")
    assert bad.returncode == 2 and "--group-by cuda: not a version column" in bad.stderr


def test_compare_help_has_examples():
    proc = run_cli("compare", "--help")
    assert proc.returncode == 0 and "Examples:" in proc.stdout and "--group-by" in proc.stdout
