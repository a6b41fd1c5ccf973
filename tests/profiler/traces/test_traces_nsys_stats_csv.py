"""nsys stats CSV kernel summaries; other report kinds are refused by name."""

from __future__ import annotations

import csv

import pytest
from fixtures_traces import fixture

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces import (
    SUMMARY_COLUMNS,
    detect_format,
    read_kernels,
    summarize_kernels,
)

KERN = "nsys_stats_csv/llm-bench_vllm_qwen2.5-7b_a100_cuda_gpu_kern_sum.csv"
MEM = "nsys_stats_csv/llm-bench_vllm_qwen2.5-7b_a100_cuda_gpu_mem_size_sum.csv"


def test_kernel_summary_matches_plain_csv_sum() -> None:
    path = fixture(KERN)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert detect_format(path) == "nsys-stats-csv"
    df = read_kernels(path)
    assert list(df.columns) == list(SUMMARY_COLUMNS)
    assert len(rows) == 65
    assert int(df["calls"].sum()) == sum(int(r["Instances"]) for r in rows)
    assert int(df["total_ns"].sum()) == sum(int(r["Total Time (ns)"]) for r in rows)
    assert df["min_ns"].min() == min(int(r["Min (ns)"]) for r in rows)
    assert summarize_kernels(df).equals(df)


def test_memory_report_is_refused_by_name() -> None:
    with pytest.raises(TraceError, match=r"cuda_gpu_mem_size_sum.*not a kernel summary"):
        read_kernels(fixture(MEM))


def test_old_gpukernsum_header(tmp_path) -> None:
    path = tmp_path / "old.csv"
    path.write_text(
        "Time(%),Total Time (ns),Instances,Average,Minimum,Maximum,Name\n"
        '75.0,3000,3,1000.0,900,1100,"k1(int)"\n25.0,1000,1,1000.0,1000,1000,"k2"\n'
    )
    df = read_kernels(path)
    assert df["total_ns"].tolist() == [3000, 1000]
    assert df["min_ns"].tolist() == [900, 1000]


def test_negative_total_time_names_the_kernel(tmp_path) -> None:
    path = tmp_path / "neg.csv"
    path.write_text(
        "Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),Name\n"
        '75.0,-3000,3,1000.0,1000.0,900,1100,100.0,"gemm(int)"\n'
    )
    with pytest.raises(TraceError, match=r"neg\.csv: kernel 'gemm\(int\)' has a negative Total"):
        read_kernels(path)
