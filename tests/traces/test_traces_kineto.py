"""PyTorch profiler (Kineto) Chrome traces: exact totals against a plain JSON sum."""

from __future__ import annotations

import gzip
import json

import pytest
from fixtures_traces import fixture, kineto_kernel_totals

from nnr_profile.core.errors import TraceError
from nnr_profile.traces import detect_format, read_kernels, summarize_trace
from nnr_profile.traces.kineto import kineto_columns, us_to_ns

CASES = {
    "hta_trace_diff_control.json.gz": ("NVIDIA A100-PG509-200", 8568),
    "hta_trace_diff_test.json.gz": ("Tesla V100-SXM2-16GB", 9876),
    "hta_critical_path_alexnet.json.gz": ("NVIDIA A100-PG509-200", 79),
    "hta_triton_example.json.gz": ("NVIDIA A100-PG509-200", 1),
    "hta_amd_mi250_rocm.json.gz": ("AMD Radeon Graphics", 14),
}


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


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_equals_full_parse(name: str) -> None:
    path = fixture(f"kineto/{name}")
    assert kineto_columns(path, fast=True) == kineto_columns(path, fast=False)


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


def test_minified_and_ns_unit_trace(tmp_path) -> None:
    doc = {
        "displayTimeUnit": "ns",
        "deviceProperties": [{"id": 0, "name": "GPU A"}],
        "traceEvents": [
            {"ph": "X", "cat": "kernel", "name": "k", "ts": 10, "dur": 1500, "args": {"device": 0}},
            {"ph": "X", "cat": "cpu_op", "name": "op", "ts": 1, "dur": 99},
        ],
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc, separators=(",", ":")))
    df = read_kernels(path)
    assert df["duration_ns"].tolist() == [1500]
    assert df["gpu_name"].tolist() == ["GPU A"]


def test_truncated_gzip_is_a_clear_error(tmp_path) -> None:
    src = fixture("kineto/hta_critical_path_alexnet.json.gz")
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(src.read_bytes()[:5000])
    with pytest.raises(TraceError, match="truncated or corrupt"):
        read_kernels(cut)


def test_truncated_json_is_a_clear_error(tmp_path) -> None:
    text = gzip.decompress(fixture("kineto/hta_triton_example.json.gz").read_bytes())
    cut = tmp_path / "cut.json"
    cut.write_bytes(text[: len(text) // 2])
    with pytest.raises(TraceError, match="not valid JSON"):
        read_kernels(cut)


def test_trace_without_kernels(tmp_path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({"traceEvents": [{"ph": "X", "cat": "cpu_op", "ts": 1, "dur": 2}]}))
    with pytest.raises(TraceError, match="no kernels"):
        read_kernels(path)
