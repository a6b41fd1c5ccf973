"""PyTorch profiler (Kineto) Chrome traces: exact totals against a plain JSON sum, units,
hostile values, streaming."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest
from fixtures_traces import fixture, kineto_kernel_totals

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces import detect_format, read_kernels, summarize_trace, trace_summary
from nnr_profile.profiler.traces.formats.kineto import (
    ENDS,
    _events,
    kineto_columns,
    top_level,
    us_to_ns,
)

CASES = {
    "hta_trace_diff_control.json.gz": ("NVIDIA A100-PG509-200", 8568),
    "hta_trace_diff_test.json.gz": ("Tesla V100-SXM2-16GB", 9876),
    "hta_critical_path_alexnet.json.gz": ("NVIDIA A100-PG509-200", 79),
    "hta_triton_example.json.gz": ("NVIDIA A100-PG509-200", 1),
    "hta_amd_mi250_rocm.json.gz": ("AMD Radeon Graphics", 14),
}

NS_PRECISION_TRACE = """{
  "schemaVersion": 1,
  "deviceProperties": [
    {
      "id": 0, "name": "Tesla V100-SXM2-16GB", "totalGlobalMem": 16945512448,
      "computeMajor": 7, "computeMinor": 0,
      "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,
      "regsPerBlock": 65536, "regsPerMultiprocessor": 65536, "warpSize": 32,
      "sharedMemPerBlock": 49152, "sharedMemPerMultiprocessor": 98304,
      "numSms": 80, "sharedMemPerBlockOptin": 98304
    }
  ],
  "cupti_version": 18,
  "cuda_runtime_version": 12010,
  "traceEvents": [
  {
    "ph": "X", "cat": "cpu_op", "name": "aten::fill_", "pid": 1102, "tid": 1102,
    "ts": 6183219.071, "dur": 21.337,
    "args": {
      "External id": 31, "Record function id": 0, "Ev Idx": 30
    }
  },
  {
    "ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1102, "tid": 1102,
    "ts": 6183226.512, "dur": 9.734,
    "args": {
      "External id": 31, "cbid": 211, "correlation": 31
    }
  },
  {
    "ph": "X", "cat": "kernel", "name": "void at::native::vectorized_elementwise_kernel<4, \
at::native::FillFunctor<float>, at::detail::Array<char*, 1> >(int, \
at::native::FillFunctor<float>, at::detail::Array<char*, 1>)", "pid": 0, "tid": 7,
    "ts": 6183240.161, "dur": 4.928,
    "args": {
      "External id": 31,
      "queued": 0, "device": 0, "context": 1,
      "stream": 7, "correlation": 31,
      "registers per thread": 16,
      "shared memory": 0,
      "blocks per SM": 0.0125,
      "warps per SM": 0.05,
      "grid": [1, 1, 1],
      "block": [128, 1, 1],
      "est. achieved occupancy %": 0
    }
  },
  {
    "ph": "X", "cat": "kernel", "name": "volta_sgemm_32x128_tn", "pid": 0, "tid": 7,
    "ts": 6183301.5, "dur": 12.064,
    "args": {
      "External id": 35,
      "queued": 0, "device": 0, "context": 1,
      "stream": 7, "correlation": 35,
      "registers per thread": 55,
      "shared memory": 16384,
      "blocks per SM": 0.8,
      "warps per SM": 3.2,
      "grid": [64, 1, 1],
      "block": [128, 1, 1],
      "est. achieved occupancy %": 5
    }
  },
  {
    "ph": "f", "id": 31, "pid": 0, "tid": 7, "ts": 6183240.161,
    "cat": "ac2g", "name": "ac2g", "bp": "e"
  }
  ],
  "traceName": "rank-0.Apr_03_18_51_38.1102.pt.trace.json",
  "displayTimeUnit": "ns",
  "baseTimeNanoseconds": 1712195492000000000
}
"""
"""Kineto's nanosecond-precision layout: displayTimeUnit "ns", values fractional microseconds."""


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernels_match_plain_json_sum(name: str) -> None:
    path = fixture(f"kineto/{name}")
    gpu, expected = CASES[name]
    count, total = kineto_kernel_totals(path)
    assert count == expected
    assert detect_format(path) == "kineto"
    df = read_kernels(path)
    assert len(df) == count
    assert int(df["duration_ns"].sum()) == total
    assert set(df["gpu_name"]) == {gpu}
    summary = summarize_trace(path)
    assert int(summary["calls"].sum()) == count
    assert int(summary["total_ns"].sum()) == total
    assert "read as microseconds" in summary.attrs["notes"][0]


def test_minified_layout_gives_the_same_rows(tmp_path: Path) -> None:
    src = fixture("kineto/hta_critical_path_alexnet.json.gz")
    minified = tmp_path / "minified.json"
    minified.write_text(json.dumps(json.loads(gzip.decompress(src.read_bytes()))))
    assert kineto_columns(minified) == kineto_columns(src)


def test_fractional_microseconds_round_to_ns() -> None:
    assert us_to_ns(6.88) == 6880
    assert us_to_ns(1.76) == 1760
    assert us_to_ns(71) == 71000
    assert us_to_ns(4203669603771.648) == 4203669603771648
    assert us_to_ns(0.0005) == 0


def test_amd_trace_device_and_display_unit() -> None:
    df = read_kernels(fixture("kineto/hta_amd_mi250_rocm.json.gz"))
    assert set(df["device"]) == {2}
    assert df["duration_ns"].min() > 1000


def test_ns_display_unit_with_fractional_values_reads_microseconds(tmp_path: Path) -> None:
    path = tmp_path / "rank-0.pt.trace.json.gz"
    path.write_bytes(gzip.compress(NS_PRECISION_TRACE.encode()))
    df = read_kernels(path)
    assert df["duration_ns"].tolist() == [4928, 12064]
    assert df["start_ns"].tolist() == [6183240161, 6183301500]
    assert df["short_name"].tolist() == ["vectorized_elementwise_kernel", "volta_sgemm_32x128_tn"]
    assert set(df["gpu_name"]) == {"Tesla V100-SXM2-16GB"}
    assert kineto_kernel_totals(path) == (2, 4928 + 12064)
    (note,) = trace_summary(path).notes
    assert "read as microseconds" in note and "'ns' is a display hint" in note


def _trace(tmp_path: Path, events: list[dict], unit: str | None = "ns") -> Path:
    doc: dict = {"deviceProperties": [{"id": 0, "name": "GPU A"}], "traceEvents": events}
    if unit is not None:
        doc["displayTimeUnit"] = unit
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def _kernel(ts: object, dur: object, name: str = "k") -> dict:
    return {"ph": "X", "cat": "kernel", "name": name, "ts": ts, "dur": dur, "args": {"device": 0}}


def test_ns_display_unit_with_epoch_nanoseconds_reads_nanoseconds(tmp_path: Path) -> None:
    path = _trace(tmp_path, [_kernel(1712195498265081500, 4928), _kernel(1712195498265090000, 7)])
    df = read_kernels(path)
    assert df["duration_ns"].tolist() == [4928, 7]
    assert df["gpu_name"].tolist() == ["GPU A", "GPU A"]
    assert "read as nanoseconds" in df.attrs["notes"][0]
    assert kineto_kernel_totals(path) == (2, 4935)


def test_ns_display_unit_with_unproven_integers_reads_microseconds(tmp_path: Path) -> None:
    path = _trace(tmp_path, [_kernel(10, 1500), {"ph": "X", "cat": "cpu_op", "ts": 1, "dur": 9}])
    df = read_kernels(path)
    assert df["duration_ns"].tolist() == [1_500_000]
    assert "nothing in the values proves nanoseconds" in df.attrs["notes"][0]


@pytest.mark.parametrize(
    ("ts", "dur", "shown"),
    [(10, -5, "dur -5"), (10, True, "dur True"), (10, "4.9", "dur '4.9'"), ("x", 1, "ts 'x'")],
)
def test_bad_kernel_times_are_refused_naming_file_and_event(
    tmp_path: Path, ts: object, dur: object, shown: str
) -> None:
    path = _trace(tmp_path, [_kernel(1, 2, "fine"), _kernel(ts, dur, "gemm")])
    with pytest.raises(
        TraceError, match=r"t\.json: kernel event traceEvents\[1\] \('gemm'\)"
    ) as err:
        read_kernels(path)
    assert shown in str(err.value)


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    src = fixture("kineto/hta_critical_path_alexnet.json.gz")
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(src.read_bytes()[:5000])
    with pytest.raises(TraceError, match="truncated or corrupt"):
        read_kernels(cut)


def test_truncated_json_is_a_clear_error(tmp_path: Path) -> None:
    text = gzip.decompress(fixture("kineto/hta_triton_example.json.gz").read_bytes())
    cut = tmp_path / "cut.json"
    cut.write_bytes(text[: len(text) // 2])
    with pytest.raises(TraceError, match="not valid JSON"):
        read_kernels(cut)


def test_json_without_trace_events(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"name": "not a trace", "values": [1, 2]}')
    with pytest.raises(TraceError, match="no traceEvents list"):
        read_kernels(path)


def test_trace_without_kernels(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({"traceEvents": [{"ph": "X", "cat": "cpu_op", "ts": 1, "dur": 2}]}))
    with pytest.raises(TraceError, match="no kernels"):
        read_kernels(path)


def test_large_gzip_trace_is_streamed(tmp_path: Path) -> None:
    """A trace of 10 MB of JSON is read holding far less than the JSON in memory."""
    filler = {"ph": "X", "cat": "cpu_op", "name": "aten::add", "ts": 1, "dur": 2}
    events = [{**filler, "args": {"stack": "x" * 2500}}] * 4000 + [_kernel(5, 3.5)]
    raw = json.dumps({"traceEvents": events}).encode()
    assert len(raw) > 10_000_000
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(raw, 1))
    tracemalloc.start()
    try:
        summary = trace_summary(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(s.calls, s.total_ns) for s in summary.stats] == [(1, 3500)]
    assert peak < len(raw) / 4


@pytest.mark.parametrize("name", ["hta_amd_mi250_rocm.json.gz", "hta_triton_example.json.gz"])
def test_fields_from_the_stream_ends_equal_a_full_pass(name: str) -> None:
    path = fixture(f"kineto/{name}")
    assert _events(path)[1] == top_level(path)[1]


def test_fields_far_from_the_events_are_still_found(tmp_path: Path) -> None:
    """Fields more than the kept ends away from the events are read by a second pass."""
    doc = {
        "traceEvents": [_kernel(1712195498265081500, 4928)],
        "traceName": "x" * (2 * ENDS),
        "displayTimeUnit": "ns",
    }
    path = tmp_path / "far.json"
    path.write_text(json.dumps(doc))
    assert read_kernels(path)["duration_ns"].tolist() == [4928]


def test_array_form_trace(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text(json.dumps([_kernel(3, 1.5), {"ph": "X", "cat": "cpu_op", "ts": 1, "dur": 9}]))
    assert read_kernels(path)["duration_ns"].tolist() == [1500]
