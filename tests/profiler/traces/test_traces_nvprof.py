"""nvprof CSV (gpu-trace, gpu-summary) and -o SQLite databases."""

from __future__ import annotations

import pytest
from fixtures_traces import fixture, sqlite_kernel_totals

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces import (
    SUMMARY_COLUMNS,
    detect_format,
    kernel_stats,
    read_kernels,
    summarize_kernels,
    trace_summary,
)

SUMMARY_CSV = """==4242== NVPROF is profiling process 4242, command: ./app
==4242== Profiling application: ./app
==4242== Profiling result:
"Type","Time(%)","Time","Calls","Avg","Min","Max","Name"
,%,ms,,us,us,ms,
"GPU activities",61.500000,1.234567,10,123.4567,100.001000,0.150001,"gemm<float>(float*, int) [12]"
"GPU activities",30.000000,0.600000,3,200.000000,199.999000,0.200001,"relu(float*)"
"GPU activities",8.500000,0.170000,4,42.500000,40.000000,0.045000,"[CUDA memcpy HtoD]"
"API calls",90.000000,25.000000,30,833.333000,1.000000,20.000000,"cudaMalloc"
"""


MULTI_SECTION_SUMMARY = """==28934== NVPROF is profiling process 28934, command: ./add_cuda
Max error: 0
==28934== Profiling application: ./add_cuda
==28934== Profiling result:
"Type","Time(%)","Time","Calls","Avg","Min","Max","Name"
,%,ms,,ms,ms,ms,
"GPU activities",100.000000,2.345536,1,2.345536,2.345536,2.345536,"add(int, float*, float*)"
==28934== Unified Memory profiling result:
Device "Tesla V100-SXM2-16GB (0)"
"Count","Avg Size","Min Size","Max Size","Total Size","Total Time","Name"
48,170.666667KB,4.000000KB,0.996094MB,8.000000MB,843.866000us,"Host To Device"
24,170.666667KB,4.000000KB,0.996094MB,4.000000MB,357.277000us,"Device To Host"
12,,,,,4.243755ms,"Gpu page fault groups"
Total CPU Page faults: 36
==28934== API calls:
"Type","Time(%)","Time","Calls","Avg","Min","Max","Name"
,%,ms,,ms,us,ms,
"API calls",97.930000,197.450000,2,98.723000,38.456000,197.410000,"cudaMallocManaged"
"API calls",1.620000,3.265600,1,3.265600,3265.600000,3.265600,"cudaDeviceSynchronize"
,0.450000,0.907000,1,0.907000,907.000000,0.907000,"cudaFree"
"""
"""nvprof --csv --print-gpu-summary of a unified-memory program: the kernel table, then
sections with their own headers, values with units inside, empty fields, a plain line."""


def test_gpu_summary_with_further_sections_reads_gpu_activities_only(tmp_path) -> None:
    path = tmp_path / "nvprof_summary.csv"
    path.write_text(MULTI_SECTION_SUMMARY)
    assert detect_format(path) == "nvprof-csv"
    summary = trace_summary(path)
    assert [(s.name, s.calls, s.total_ns) for s in summary.stats] == [
        ("add(int, float*, float*)", 1, 2345536)
    ]
    (note,) = summary.notes
    assert "Unified Memory profiling result, API calls" in note
    assert read_kernels(path).attrs["notes"] == [note]


def test_gpu_trace_followed_by_unified_memory_section(tmp_path) -> None:
    trace = fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv").read_text()
    unified = MULTI_SECTION_SUMMARY[MULTI_SECTION_SUMMARY.index("==28934== Unified") :]
    path = tmp_path / "trace_um.csv"
    path.write_text(trace + unified)
    df = read_kernels(path)
    assert df["duration_ns"].tolist() == [2016, 1696]
    assert "Unified Memory profiling result" in df.attrs["notes"][0]


@pytest.mark.parametrize(
    ("bad", "needle"),
    [("-2.345536", "negative Time"), ("abc", "Time 'abc' (ms), not a number")],
)
def test_bad_summary_times_name_the_kernel(tmp_path, bad: str, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(MULTI_SECTION_SUMMARY.replace("100.000000,2.345536,", f"100.000000,{bad},"))
    with pytest.raises(TraceError, match=r"bad\.csv: kernel 'add\(int, float\*, float\*\)'") as err:
        read_kernels(path)
    assert needle in str(err.value)


def test_negative_trace_duration_names_the_kernel(tmp_path) -> None:
    text = fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv").read_text()
    lines = text.splitlines(keepends=True)
    row = next(i for i, ln in enumerate(lines) if "kernel_vectorAdd" in ln)
    cells = lines[row].split(",")
    cells[1] = "-" + cells[1]
    lines[row] = ",".join(cells)
    path = tmp_path / "neg.csv"
    path.write_text("".join(lines))
    with pytest.raises(TraceError, match=r"kernel 'kernel_vectorAdd.*negative Duration"):
        read_kernels(path)


def test_gpu_trace_csv_units_are_exact() -> None:
    path = fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv")
    assert detect_format(path) == "nvprof-csv"
    df = read_kernels(path)
    assert len(df) == 2
    assert df["duration_ns"].tolist() == [2016, 1696]
    assert df["start_ns"].tolist() == [215521107, 215528627]
    assert set(df["name"]) == {"kernel_vectorAdd(float const *, float const *, int, int, float*)"}
    assert set(df["short_name"]) == {"kernel_vectorAdd"}
    assert set(df["gpu_name"]) == {"GeForce GTX 950"}
    assert set(df["device"]) == {0}


def test_gpu_summary_csv_gives_summary_frame(tmp_path) -> None:
    path = tmp_path / "summary.csv"
    path.write_text(SUMMARY_CSV)
    assert detect_format(path) == "nvprof-csv"
    df = read_kernels(path)
    assert list(df.columns) == list(SUMMARY_COLUMNS)
    assert df.attrs["kind"] == "summary"
    gemm = df.set_index("name").loc["gemm<float>(float*, int)"]
    assert (gemm["calls"], gemm["total_ns"]) == (10, 1234567)
    assert (gemm["min_ns"], gemm["max_ns"]) == (100001, 150001)
    assert int(df["total_ns"].sum()) == 1234567 + 600000
    assert summarize_kernels(df).equals(df)


def test_nvprof_sqlite_matches_plain_sql() -> None:
    path = fixture("nvprof/profiling-lm_pytorch_lm_v100_net.sql")
    tables = ("CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL", "CUPTI_ACTIVITY_KIND_KERNEL")
    count, total = sqlite_kernel_totals(path, tables)
    assert (count, total) == (160, 7296770)
    assert detect_format(path) == "nvprof-sqlite"
    df = read_kernels(path)
    assert len(df) == count and int(df["duration_ns"].sum()) == total
    assert set(df["gpu_name"]) == {"Tesla V100-SXM2-16GB"}
    stats = kernel_stats(path)
    assert len(stats) == 42
    assert sum(s.total_ns for s in stats) == total
    assert "reduce_kernel" in {s.short_name for s in stats}


def test_csv_with_only_memcpy_has_no_kernels(tmp_path) -> None:
    path = tmp_path / "memcpy.csv"
    lines = fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv").read_text().splitlines()
    path.write_text("\n".join(ln for ln in lines if "kernel_" not in ln) + "\n")
    with pytest.raises(TraceError, match="no kernels"):
        read_kernels(path)


def test_truncated_csv_row_is_a_clear_error(tmp_path) -> None:
    text = fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv").read_text()
    path = tmp_path / "cut.csv"
    path.write_text(text[: text.index("kernel_vectorAdd") + 5])
    with pytest.raises(TraceError, match="truncated"):
        read_kernels(path)
