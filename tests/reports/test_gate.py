"""`nnr-profile gate`: verdicts from the CI, JUnit and JSON, and the real command on the CPU."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from conftest import page_tables, run_cli

from nnr_profile.reports.gate import (
    EXIT_CODES,
    FAIL,
    INCONCLUSIVE,
    PASS,
    gate_document,
    judge,
    junit_xml,
    overall,
    select_rows,
    verdict,
    write_gate,
)
from nnr_profile.reports.overhead import OVERHEAD_COLUMNS


def _overhead(rows: list[dict]) -> pd.DataFrame:
    base = {
        "framework": "torch",
        "workload": "resnet18",
        "workload_args": "{}",
        "batch_size": 4,
        "image_size": float("nan"),
        "device": "cuda",
        "gpu_arch": "Ampere",
        "gpu_name": "NVIDIA A100",
        "baseline_mode": "default",
        "mode": "deterministic",
        "baseline_median_ms": 10.0,
        "median_ms": 12.0,
        "ratio": 1.2,
        "overhead_pct": 20.0,
        "ci_low_pct": 15.0,
        "ci_high_pct": 25.0,
        "p_value": 0.01,
        "p_holm": 0.01,
        "n_pairs": 5,
        "n_trials": 5,
        "n_iterations": 500,
        "n_failed": 0,
        "noisy": False,
        "note": "",
    }
    return pd.DataFrame([{**base, **row} for row in rows], columns=OVERHEAD_COLUMNS)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1.31, 1.40, FAIL),
        (1.10, 1.29, PASS),
        (1.25, 1.35, INCONCLUSIVE),
        (1.30, 1.35, INCONCLUSIVE),
        (float("nan"), float("nan"), INCONCLUSIVE),
    ],
)
def test_the_verdict_follows_the_interval(low, high, expected):
    assert verdict(low, high, 1.30) == expected


def test_overall_is_the_worst_row():
    assert overall(pd.Series([PASS, INCONCLUSIVE, FAIL])) == FAIL
    assert overall(pd.Series([PASS, INCONCLUSIVE])) == INCONCLUSIVE
    assert overall(pd.Series([PASS, PASS])) == PASS
    assert EXIT_CODES == {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}


def test_judge_turns_percentages_into_ratios():
    table = judge(_overhead([{"ci_low_pct": 31.0, "ci_high_pct": 40.0, "ratio": 1.35}]), 1.30)
    row = table.iloc[0]
    assert row["ci_low_ratio"] == pytest.approx(1.31) and row["ci_high_ratio"] == 1.4
    assert row["verdict"] == FAIL and row["max_ratio"] == 1.30


def test_select_rows_keeps_the_gated_cell_only():
    overhead = _overhead(
        [
            {},
            {"mode": "fast", "baseline_mode": "default"},
            {"workload": "resnet50"},
            {"batch_size": 8},
            {"workload_args": '{"norm": "batch"}'},
        ]
    )
    chosen = select_rows(overhead, [("torch", "resnet18")], "default", "deterministic", 4)
    assert len(chosen) == 2
    with_args = select_rows(
        overhead, [("torch", "resnet18")], "default", "deterministic", None, None, {"norm": "batch"}
    )
    assert with_args["workload_args"].tolist() == ['{"norm": "batch"}']


def test_the_document_and_junit_carry_rows_verdicts_and_kernel_deltas(tmp_path):
    table = judge(
        _overhead(
            [
                {"gpu_name": "NVIDIA A100", "ci_low_pct": 31.0, "ci_high_pct": 40.0},
                {"gpu_name": "NVIDIA H100", "ci_low_pct": 25.0, "ci_high_pct": 35.0},
            ]
        ),
        1.30,
    )
    attribution = pd.DataFrame(
        [
            {
                **{c: table.iloc[0][c] for c in table.columns if c in OVERHEAD_COLUMNS[:8]},
                "collector": "nsys",
                "baseline_mode": "default",
                "mode": "deterministic",
                "kernel": f"kernel_{i}",
                "base_calls": 1,
                "other_calls": 1,
                "base_ms_per_iter": 1.0,
                "other_ms_per_iter": 1.0 + i / 10,
                "delta_ms_per_iter": i / 10,
                "change": "slower",
            }
            for i in range(12)
        ]
    )
    document = gate_document(table, attribution, {"max_ratio": 1.30, "baseline": "default"})
    assert document["verdict"] == FAIL and document["exit_code"] == 1
    first, second = document["rows"]
    assert first["verdict"] == FAIL and second["verdict"] == INCONCLUSIVE
    assert [k["kernel"] for k in first["kernel_deltas"]][:2] == ["kernel_11", "kernel_10"]
    assert len(first["kernel_deltas"]) == 10 and second["kernel_deltas"] == []
    assert first["ci_low"] == pytest.approx(1.31) and first["n"] == 5
    suite = ET.fromstring(junit_xml(document))
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    assert cases[0].find("failure") is not None and cases[1].find("skipped") is not None
    assert "kernel_11" in cases[0].find("system-out").text
    write_gate(document, table, tmp_path)
    page = page_tables(tmp_path / "gate.html")
    assert page.rows == {"gate": 2, "gate_kernels": 10} and page.scripts == 1
    text = (tmp_path / "gate.html").read_text(encoding="utf-8")
    assert "fail" in text and "1.30x" in text and "NVIDIA H100" in text


@pytest.fixture(scope="module")
def gated_store(tmp_path_factory) -> tuple[Path, dict]:
    """A real gate run on the CPU: calibrate with 400 % injected work, a kernel collector too."""
    folder = tmp_path_factory.mktemp("gate")
    proc = run_cli(
        "gate",
        "--model",
        "calibrate",
        "--workload-arg",
        "overhead=4.0",
        "--gpu",
        "cpu",
        "--batch-size",
        "4",
        "--iterations",
        "8",
        "--warmup",
        "2",
        "--repeats",
        "4",
        "--collector",
        "timing,torch-profiler",
        "--max-ratio",
        "1.05",
        "--db",
        str(folder / "gate.db"),
        "--out",
        str(folder / "out"),
    )
    document = json.loads((folder / "out" / "gate.json").read_text())
    return folder, {"proc": proc, "document": document}


@pytest.mark.slow
def test_gate_fails_a_ratio_above_the_maximum_and_writes_its_files(gated_store):
    folder, run = gated_store
    assert run["proc"].returncode == 1, run["proc"].stderr
    document = run["document"]
    assert document["verdict"] == "fail" and document["mode"] == "deterministic"
    (row,) = document["rows"]
    assert row["ci_low"] > 1.05 and row["n"] == 4 and row["workload"] == "calibrate"
    assert row["kernel_deltas"], "the torch profiler ran: its operator deltas are listed"
    assert "gate: FAIL (exit 1)" in run["proc"].stdout
    for name in ("gate.json", "gate.xml", "gate.csv", "gate_kernels.csv", "gate.html"):
        assert (folder / "out" / name).exists()
    ET.parse(folder / "out" / "gate.xml")
    page = page_tables(folder / "out" / "gate.html")
    kernels = pd.read_csv(folder / "out" / "gate_kernels.csv")
    assert page.rows == {"gate": 1, "gate_kernels": len(kernels)} and page.scripts == 1


@pytest.mark.slow
def test_gate_from_db_passes_and_straddles(gated_store):
    folder, run = gated_store
    row = run["document"]["rows"][0]
    common = ["gate", "--model", "calibrate", "--from-db", str(folder / "gate.db")]
    passed = run_cli(*common, "--max-ratio", "50", "--out", str(folder / "pass"))
    assert passed.returncode == 0, passed.stderr
    assert json.loads((folder / "pass" / "gate.json").read_text())["verdict"] == "pass"
    middle = f"{(row['ci_low'] + row['ci_high']) / 2:.4f}"
    straddles = run_cli(*common, "--max-ratio", middle, "--out", str(folder / "mid"))
    assert straddles.returncode == 3, straddles.stderr
    assert "warning: a 95 % interval straddles" in straddles.stderr


def test_gate_refuses_a_bad_baseline_and_an_empty_store(tmp_path):
    proc = run_cli("gate", "--model", "mlp", "--max-ratio", "1.3", "--baseline", "deterministic")
    assert proc.returncode == 2 and "--baseline 'deterministic' is not a baseline" in proc.stderr
    missing = run_cli("gate", "--model", "mlp", "--max-ratio", "1.3", "--from-db", "nope.db")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    zero = run_cli("gate", "--model", "mlp", "--max-ratio", "0")
    assert zero.returncode == 2 and "--max-ratio" in zero.stderr


def test_gate_help_has_examples():
    proc = run_cli("gate", "--help")
    assert proc.returncode == 0 and "Examples:" in proc.stdout and "--from-db" in proc.stdout
