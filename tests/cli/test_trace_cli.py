"""`nnr-profile trace` as a user runs it: a subprocess, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_traces import fixture, kineto_kernel_totals, sqlite_kernel_totals


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", "trace", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnr-profile: error:")
    assert needle in lines[0]


def test_summarize_nsys_sqlite_json() -> None:
    path = fixture("nsys_sqlite/pipit_cloverleaf_a100_nsys2024.5.1.sqlite")
    result = run("summarize", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    count, total = sqlite_kernel_totals(path, ("CUPTI_ACTIVITY_KIND_KERNEL",))
    assert sum(r["calls"] for r in rows) == count
    assert sum(r["total_ns"] for r in rows) == total
    assert {"name", "calls", "total_ns"} <= set(rows[0])


def test_summarize_csv_and_markdown() -> None:
    path = fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv")
    result = run("summarize", str(path), "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["calls"] == "2" and rows[0]["total_ns"] == "3712"
    markdown = run("summarize", str(path), "--trace-format", "nvprof-csv")
    assert markdown.returncode == 0
    assert markdown.stdout.startswith("| name | short_name | calls | total_ns |")


def test_diff_hta_pair_deltas_sum_to_totals() -> None:
    base = fixture("kineto/hta_trace_diff_control.json.gz")
    other = fixture("kineto/hta_trace_diff_test.json.gz")
    result = run("diff", str(base), str(other), "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    expected = kineto_kernel_totals(other)[1] - kineto_kernel_totals(base)[1]
    assert sum(r["delta_ns"] for r in rows) == expected
    assert sum(r["other_total_ns"] - r["base_total_ns"] for r in rows) == expected


def test_cli_does_not_import_pandas_or_frameworks() -> None:
    path = fixture("kineto/hta_triton_example.json.gz")
    code = (
        "import sys; from nnr_profile.cli.main import main\n"
        f"sys.argv = ['nnr-profile', 'trace', 'summarize', {str(path)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = {'pandas', 'torch', 'tensorflow'} & set(sys.modules)\n"
        "sys.stderr.write(repr(sorted(bad)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stderr.strip().endswith("[]"), result.stderr


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("missing.sqlite", "does not exist"),
        (".", "is a directory"),
        ("nsys_sqlite/weatherbench2_nokernels_rtx4060_nsys2025.5.1.sqlite", "no kernels"),
        ("nsys_stats_csv/llm-bench_vllm_qwen2.5-7b_a100_cuda_gpu_mem_size_sum.csv", "mem_size"),
    ],
)
def test_errors_are_one_line_exit_2(target: str, needle: str, tmp_path: Path) -> None:
    if target == "missing.sqlite":
        path = tmp_path / target
    elif target == ".":
        path = tmp_path
    else:
        path = fixture(target)
    assert_one_line_error(run("summarize", str(path)), needle)


def test_truncated_file_is_one_line_exit_2(tmp_path: Path) -> None:
    src = fixture("nsys_sqlite/pipit_cloverleaf_a100_nsys2024.5.1.sqlite")
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(src.read_bytes()[:100_000])
    assert_one_line_error(run("summarize", str(cut)), "truncated")


def test_unknown_format_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    assert_one_line_error(run("diff", str(path), str(path)), "not a trace format")


@pytest.mark.parametrize("forced", ["nvprof-csv", "nsys-stats-csv"])
def test_csv_format_forced_on_a_kineto_gzip(forced: str) -> None:
    path = fixture("kineto/hta_triton_example.json.gz")
    result = run("summarize", str(path), "--trace-format", forced)
    assert_one_line_error(result, f"is not in the {forced} format")
    assert "looks like kineto" in result.stderr and "truncated" not in result.stderr


def test_unit_note_follows_markdown_and_goes_to_stderr_for_csv() -> None:
    path = fixture("kineto/hta_triton_example.json.gz")
    markdown = run("summarize", str(path))
    assert markdown.returncode == 0
    assert markdown.stdout.rstrip().splitlines()[-1].startswith(f"Note: {path}: ts/dur read as")
    table = run("summarize", str(path), "--format", "csv")
    assert "read as microseconds" not in table.stdout
    assert table.stderr.startswith(f"note: {path}: ts/dur read as microseconds")


def test_bad_option_is_usage_error() -> None:
    result = run("summarize", "x", "--trace-format", "bogus")
    assert_one_line_error(result, "--trace-format")


def test_help_has_examples() -> None:
    for command in ("summarize", "diff"):
        result = run(command, "--help")
        assert result.returncode == 0
        assert "Example:" in result.stdout and "nnr-profile trace " + command in result.stdout
