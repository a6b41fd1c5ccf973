"""Every trace reader bounds nesting and field sizes: small hostile files just past each bound
are refused with the bound named, files just inside it are read, and both stay fast."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest
from fixtures_traces import fixture

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces import read_kernels, trace_summary
from nnr_profile.profiler.traces.formats import kineto
from nnr_profile.profiler.traces.formats.kineto import JsonBounds
from nnr_profile.profiler.traces.limits import MAX_FIELD_BYTES, MAX_JSON_DEPTH, MAX_LINE_CHARS

KERNEL = {"ph": "X", "cat": "kernel", "name": "gemm", "ts": 1, "dur": 2, "args": {"device": 0}}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _trace(tmp_path: Path, text: str, name: str = "trace.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _with_args(value: str) -> str:
    event = json.dumps(KERNEL)[:-2] + f', "x": {value}}}}}'
    return '{"traceEvents": [' + event + "]}"


# Depth: the whole trace is 3 levels deep before the hostile value (object, list, event) and
# `args` one more, so a value nested `MAX_JSON_DEPTH - 4` deep inside `args` is the most allowed.
DEPTH_CASES = {
    "top level": lambda depth: _nested(depth),
    "inside a kernel's args": lambda depth: _with_args(_nested(depth - 4)),
    "in a field after traceEvents": lambda depth: (
        '{"traceEvents": [' + json.dumps(KERNEL) + f'], "x": {_nested(depth - 1)}}}'
    ),
}


@pytest.mark.parametrize("where", sorted(DEPTH_CASES))
def test_nesting_just_past_the_limit_is_refused_naming_it(tmp_path: Path, where: str) -> None:
    path = _trace(tmp_path, DEPTH_CASES[where](MAX_JSON_DEPTH + 1))
    with pytest.raises(TraceError, match=f"more than {MAX_JSON_DEPTH} levels deep"):
        trace_summary(path)


def test_nesting_at_the_limit_is_read(tmp_path: Path) -> None:
    path = _trace(tmp_path, DEPTH_CASES["inside a kernel's args"](MAX_JSON_DEPTH))
    assert trace_summary(path).stats[0].name == "gemm"


def test_deep_nesting_is_refused_fast_and_small_also_gzip(tmp_path: Path) -> None:
    """100,000 levels (the issue's case: 22 GB before) in 200 KB, plain and gzip-compressed."""
    text = _with_args(_nested(100_000))
    plain = _trace(tmp_path, text)
    packed = tmp_path / "trace.json.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        tracemalloc.start()
        started = time.perf_counter()
        with pytest.raises(TraceError, match="levels deep"):
            trace_summary(path)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert elapsed < 5 and peak < 20 * 2**20, (elapsed, peak)


def test_a_name_just_past_the_field_limit_is_refused(tmp_path: Path) -> None:
    event = dict(KERNEL, name="k" * (MAX_FIELD_BYTES + 1))
    path = _trace(tmp_path, json.dumps({"traceEvents": [event]}))
    with pytest.raises(TraceError, match=f"JSON string of more than {MAX_FIELD_BYTES:,} bytes"):
        trace_summary(path)


def test_a_name_at_the_field_limit_is_read_in_linear_time(tmp_path: Path) -> None:
    name = "void k<" + "a" * (MAX_FIELD_BYTES - 13) + ">(int)"
    assert len(name) == MAX_FIELD_BYTES
    event = dict(KERNEL, name=name)
    path = _trace(tmp_path, json.dumps({"traceEvents": [event, event]}))
    started = time.perf_counter()
    (stats,) = trace_summary(path).stats
    assert (stats.name, stats.short_name, stats.calls) == (name, "k", 2)
    assert time.perf_counter() - started < 5


def test_escapes_count_once_and_a_long_number_is_refused(tmp_path: Path) -> None:
    escaped = dict(KERNEL, name="\\" * MAX_FIELD_BYTES)  # each one written as two bytes
    assert trace_summary(_trace(tmp_path, json.dumps({"traceEvents": [escaped]}))).stats
    number = '{"traceEvents": [], "x": 1' + "0" * MAX_FIELD_BYTES + "}"
    with pytest.raises(TraceError, match="JSON number or literal of more than"):
        trace_summary(_trace(tmp_path, number, "number.json"))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_the_scan_measures_values_that_span_reads(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A string of escaped quotes and brackets (26 bytes, escapes counted once), split across
    reads of any size: exactly its length passes, one byte less refuses."""
    text = '{"a": [["' + '\\"[{' * 5 + "\\\\" + "x" * 10 + '"]], "b": [12345]}'
    assert len(json.loads(text)["a"][0][0]) == 26

    def scan(limit: int) -> JsonBounds:
        monkeypatch.setattr(kineto, "MAX_FIELD_BYTES", limit)
        stream = JsonBounds(io.BytesIO(text.encode()), Path("t.json"))
        while stream.read(size):
            pass
        return stream

    stream = scan(26)
    assert (stream._depth, stream._in_string) == (0, False)
    with pytest.raises(TraceError, match="JSON string of more than 25 bytes"):
        scan(25)
    monkeypatch.setattr(kineto, "MAX_JSON_DEPTH", 2)
    with pytest.raises(TraceError, match="more than 2 levels deep"):
        scan(26)


def test_real_traces_pass_the_bounds() -> None:
    path = fixture("kineto/hta_trace_diff_control.json.gz")
    assert len(read_kernels(path)) == 8568


def _nvprof_csv(tmp_path: Path, name: str) -> Path:
    source = fixture("nvprof/cuda_timeline_gtx950_gpu_trace.csv").read_text().splitlines()
    row = f'215.52,2.016,40,1,1,256,1,1,8,0,0,,,"GeForce GTX 950 (0)","1","13","{name}"'
    path = tmp_path / "gpu_trace.csv"
    path.write_text("\n".join([*source[:5], row]) + "\n")
    return path


def test_csv_field_just_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = _nvprof_csv(tmp_path, "k" * (MAX_FIELD_BYTES + 1))
    with pytest.raises(TraceError, match=f"CSV field of .* over the reader's limit of {131_072:,}"):
        trace_summary(path)


def test_csv_line_past_the_limit_is_refused_before_it_is_held(tmp_path: Path) -> None:
    source = fixture("nsys_stats_csv/llm-bench_vllm_qwen2.5-7b_a100_cuda_gpu_kern_sum.csv")
    path = tmp_path / "kern_sum.csv"
    path.write_text("x," * (MAX_LINE_CHARS // 2 + 1) + "\n" + source.read_text(), encoding="utf-8")
    with pytest.raises(TraceError, match=f"line of more than {MAX_LINE_CHARS:,} characters"):
        trace_summary(path, "nsys-stats-csv")


def test_nvprof_names_and_titles_with_long_blank_runs_are_linear(tmp_path: Path) -> None:
    """The launch-id suffix and section titles were found by backtracking patterns."""
    path = _nvprof_csv(tmp_path, "k" + " " * 100_000 + "x [218]")
    lines = path.read_text().splitlines()
    lines.insert(3, "==1== " + " " * 100_000 + "x")
    path.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    (stats,) = trace_summary(path, "nvprof-csv").stats
    assert stats.name == "k" + " " * 100_000 + "x"
    assert time.perf_counter() - started < 5


def _nsys_copy(tmp_path: Path) -> Path:
    path = tmp_path / "export.sqlite"
    shutil.copy(fixture("nsys_sqlite/pipit_saxpy_a100_nsys2022.2.1.sqlite"), path)
    path.chmod(0o644)
    return path


def _kernel_name_ids(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT demangledName, shortName FROM CUPTI_ACTIVITY_KIND_KERNEL LIMIT 1"
        ).fetchone()


def test_a_sqlite_name_past_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = _nsys_copy(tmp_path)
    name_id, _ = _kernel_name_ids(path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE StringIds SET value = ? WHERE id = ?", ("k" * (MAX_FIELD_BYTES + 1), name_id)
        )
    with pytest.raises(
        TraceError, match=rf"string in StringIds \(id {name_id}\) of more than 131,072"
    ):
        trace_summary(path)
    with pytest.raises(TraceError, match="over the reader's limit"):
        read_kernels(path)


def test_a_sqlite_gpu_name_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = _nsys_copy(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE TARGET_INFO_GPU SET name = ?", ("g" * (MAX_FIELD_BYTES + 1),))
    with pytest.raises(TraceError, match="GPU name in TARGET_INFO_GPU of more than 131,072 bytes"):
        read_kernels(path)


def test_nsys_kernel_name_ids_missing_from_stringids_are_named_missing(tmp_path: Path) -> None:
    path = _nsys_copy(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE CUPTI_ACTIVITY_KIND_KERNEL SET demangledName = 987654321, shortName = 987654322"
        )
    summary = trace_summary(path)
    missing = "<kernel name id 987654321 missing from StringIds>"
    assert [(s.name, s.short_name) for s in summary.stats] == [(missing, missing)]
    assert any("1 kernel name id(s) missing from StringIds (987654321)" in n for n in summary.notes)
    frame = read_kernels(path)
    assert set(frame["short_name"]) == {missing}
    assert any("missing from StringIds" in note for note in frame.attrs["notes"])


def test_nvprof_sqlite_missing_and_oversized_names(tmp_path: Path) -> None:
    path = tmp_path / "net.sql"
    shutil.copy(fixture("nvprof/profiling-lm_pytorch_lm_v100_net.sql"), path)
    path.chmod(0o644)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL SET name = 987654321")
    (stats,) = trace_summary(path).stats
    missing = "<kernel name id 987654321 missing from StringTable>"
    assert (stats.name, stats.short_name) == (missing, missing)
    with sqlite3.connect(path) as conn:
        (first,) = conn.execute("SELECT MIN(_id_) FROM StringTable").fetchone()
        conn.execute("UPDATE CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL SET name = ?", (first,))
        huge = "_Z" + "9" * (MAX_FIELD_BYTES + 1)
        conn.execute("UPDATE StringTable SET value = ? WHERE _id_ = ?", (huge, first))
    with pytest.raises(TraceError, match=r"string in StringTable .* over the reader's limit"):
        read_kernels(path)


def test_an_xplane_event_name_past_the_limit_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("google.protobuf")
    from nnr_profile.profiler.traces.formats.tf_xplane import _xspace_class

    try:
        space = _xspace_class()()
    except TraceError as exc:
        pytest.skip(str(exc))
    gpu = space.planes.add(name="/device:GPU:0")
    gpu.event_metadata[1].id = 1
    gpu.event_metadata[1].name = "k" * (MAX_FIELD_BYTES + 1)
    line = gpu.lines.add(name="Stream #1", timestamp_ns=0)
    line.events.add(metadata_id=1, offset_ps=0, duration_ps=1000)
    path = tmp_path / "gpu.xplane.pb"
    path.write_bytes(space.SerializeToString())
    with pytest.raises(TraceError, match="event name in plane '/device:GPU:0' of 131,073 bytes"):
        trace_summary(path)
