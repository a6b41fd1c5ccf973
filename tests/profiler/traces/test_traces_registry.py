"""Format detection, registry, summaries and diffs across formats."""

from __future__ import annotations

import csv
import io
import os

import pandas as pd
import pytest
from fixtures_traces import fixture, kineto_kernel_totals

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces import (
    DIFF_COLUMNS,
    READERS,
    SUMMARY_COLUMNS,
    Probe,
    TraceReader,
    detect_format,
    diff_kernels,
    read_kernels,
    register_reader,
    summarize_kernels,
    summarize_trace,
    trace_summary,
)
from nnr_profile.profiler.traces.render import render
from nnr_profile.profiler.traces.schema import KernelStats, TraceSummary

SAMPLES = {
    "nsys-sqlite": "nsys_sqlite/pipit_saxpy_a100_nsys2022.2.1.sqlite",
    "nvprof-sqlite": "nvprof/profiling-lm_pytorch_lm_v100_net.sql",
    "nvprof-csv": "nvprof/cuda_timeline_gtx950_gpu_trace.csv",
    "nsys-stats-csv": "nsys_stats_csv/llm-bench_vllm_qwen2.5-7b_a100_cuda_gpu_kern_sum.csv",
    "kineto": "kineto/hta_triton_example.json.gz",
}


def test_registry_names() -> None:
    assert set(READERS) == {
        "nsys-sqlite",
        "nvprof-sqlite",
        "nvprof-csv",
        "nsys-stats-csv",
        "kineto",
        "tf-xplane",
    }


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_reader_sniffs_its_own_format_only(name: str) -> None:
    probe = Probe(fixture(SAMPLES[name]))
    claims = {reader.name for reader in READERS.values() if reader.sniff(probe)}
    assert claims == {name} or (name == "nvprof-csv" and claims == {name, "nsys-stats-csv"})
    assert detect_format(probe.path) == name


@pytest.mark.parametrize("forced", ["nvprof-csv", "nsys-stats-csv", "nsys-sqlite", "tf-xplane"])
def test_forced_format_that_the_content_contradicts(forced: str) -> None:
    path = fixture("kineto/hta_triton_example.json.gz")
    with pytest.raises(TraceError, match=f"is not in the {forced} format .*looks like kineto"):
        read_kernels(path, fmt=forced)


def test_a_new_format_is_one_registration(tmp_path) -> None:
    def sniff(probe: Probe) -> bool:
        return probe.text is not None and probe.text.startswith("KERNELS v1")

    def summarize(path) -> TraceSummary:
        name, calls, total = path.read_text().splitlines()[1].split(";")
        return TraceSummary([KernelStats(name, name, int(calls), int(total), 0, 0)], ("toy",))

    reader = TraceReader("toy", "a toy format", lambda p: None, summarize, sniff, priority=1)
    register_reader(reader)
    try:
        path = tmp_path / "run.toy"
        path.write_text("KERNELS v1\ngemm;3;300\n")
        assert detect_format(path) == "toy"
        assert trace_summary(path).stats[0].total_ns == 300
    finally:
        READERS.unregister("toy")


def test_writers_escape_hostile_names() -> None:
    rows = [
        KernelStats(name, name, 1, 10, 10, 10).as_row()
        for name in ("a|b\nc", "=HYPERLINK(1)", "\rx", "-1+2", "@sum")
    ]
    markdown = render(rows, SUMMARY_COLUMNS, "markdown")
    lines = markdown.splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count(" | ") == len(SUMMARY_COLUMNS) - 1 for line in lines[2:])
    assert "a\\|b c" in lines[2]
    text = render(rows, SUMMARY_COLUMNS, "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in parsed] == ["a|b\nc", "'=HYPERLINK(1)", "'\rx", "'-1+2", "'@sum"]
    assert parsed[0]["total_ns"] == "10"


def test_detection_uses_content_not_extension(tmp_path) -> None:
    src = fixture("nsys_sqlite/pipit_saxpy_a100_nsys2022.2.1.sqlite")
    renamed = tmp_path / "trace.json"
    renamed.write_bytes(src.read_bytes())
    assert len(read_kernels(renamed)) == 5


def test_missing_file(tmp_path) -> None:
    with pytest.raises(TraceError, match="does not exist"):
        read_kernels(tmp_path / "nope.sqlite")


def test_directory(tmp_path) -> None:
    with pytest.raises(TraceError, match="is a directory"):
        read_kernels(tmp_path)


def test_unknown_format(tmp_path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(TraceError, match="not a trace format"):
        read_kernels(path)


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    with pytest.raises(TraceError, match="empty"):
        read_kernels(path)


def test_unknown_format_name() -> None:
    with pytest.raises(TraceError, match="unknown trace format"):
        read_kernels(fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv"), fmt="bogus")


def test_wrong_explicit_format_is_a_trace_error() -> None:
    with pytest.raises(TraceError, match="looks like nvprof-csv"):
        read_kernels(fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv"), fmt="nsys-sqlite")


def test_csv_reader_on_binary_content_says_so(tmp_path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(TraceError, match="is binary, not an nvprof CSV file"):
        read_kernels(path, fmt="nvprof-csv")


def test_diff_on_hta_pair_sums_exactly() -> None:
    base_path = fixture("kineto/hta_trace_diff_control.json.gz")
    other_path = fixture("kineto/hta_trace_diff_test.json.gz")
    base, other = summarize_trace(base_path), summarize_trace(other_path)
    diff = diff_kernels(base, other)
    assert list(diff.columns) == list(DIFF_COLUMNS)
    expected = kineto_kernel_totals(other_path)[1] - kineto_kernel_totals(base_path)[1]
    assert int(diff["delta_ns"].sum()) == expected
    assert int(diff["delta_ns"].sum()) == int(other["total_ns"].sum() - base["total_ns"].sum())
    assert set(diff["change"]) <= {"added", "removed", "slower", "faster", "same"}
    assert (diff.loc[diff.change == "added", "base_calls"] == 0).all()
    assert (diff.loc[diff.change == "removed", "other_calls"] == 0).all()
    assert int(diff["base_calls"].sum()) == 8568 and int(diff["other_calls"].sum()) == 9876


def test_diff_classifies_each_change() -> None:
    base = pd.DataFrame(
        {"name": ["a", "b", "c", "d"], "calls": [1, 1, 1, 1], "total_ns": [10, 20, 30, 40]}
    )
    other = pd.DataFrame(
        {"name": ["a", "b", "c", "e"], "calls": [1, 2, 1, 1], "total_ns": [10, 25, 5, 7]}
    )
    diff = diff_kernels(base, other).set_index("name")
    assert diff["change"].to_dict() == {
        "a": "same",
        "b": "slower",
        "c": "faster",
        "d": "removed",
        "e": "added",
    }
    assert int(diff["delta_ns"].sum()) == 47 - 100


def test_summarize_kernels_on_launch_frame() -> None:
    df = pd.DataFrame(
        {"name": ["x", "y", "x"], "short_name": ["x", "y", "x"], "duration_ns": [5, 7, 3]}
    )
    summary = summarize_kernels(df)
    assert summary["name"].tolist() == ["x", "y"]
    assert summary.loc[0, ["calls", "total_ns", "min_ns", "max_ns"]].tolist() == [2, 8, 3, 5]
    assert summary.loc[0, "mean_ns"] == 4.0


def test_fixture_directory_is_found() -> None:
    manifest = fixture("MANIFEST.md")
    assert "Real GPU profiling artifacts" in manifest.read_text()
