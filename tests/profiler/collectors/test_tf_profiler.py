"""The tf-profiler collector and the tf-xplane reader on a real CPU capture.

TensorFlow only runs in child processes here (spawn_trial, the CLI): TF and torch crash when
loaded in one process.
"""

import csv
import importlib.util
import io
from pathlib import Path

import pytest
from conftest import run_cli

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.collectors.base import get_collector, parse_collectors
from nnr_profile.profiler.runner.process import spawn_trial

needs_tf = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)


def test_tf_profiler_is_registered_and_refuses_torch():
    assert parse_collectors("tf-profiler") == ["timing", "tf-profiler"]
    collector = get_collector("tf-profiler")
    assert collector.kernel_level
    collector.check("tf", [None])
    with pytest.raises(UsageError, match=r"TensorFlow only.*torch-profiler"):
        collector.check("torch", [None])


def test_a_corrupt_xplane_file_is_one_line_exit_2(tmp_path: Path):
    path = tmp_path / "host.xplane.pb"
    path.write_bytes(b"not a protobuf \xff\xff\xff")
    proc = run_cli("trace", "summarize", str(path), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "xplane.pb" in lines[0] and "corrupt" in lines[0], proc.stderr


@pytest.fixture(scope="module")
def cpu_trial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfprof")
    spec = TrialSpec(
        "tf",
        "smallcnn",
        MODES["default"],
        collector="tf-profiler",
        batch_size=2,
        image_size=16,
        warmup=1,
        iterations=3,
    )
    return spawn_trial(spec, timeout_s=300, artifact_dir=folder)


@pytest.mark.slow
@needs_tf
def test_tf_profiler_keeps_the_xplane_and_stores_the_cpu_op_table(cpu_trial):
    assert cpu_trial.status == "ok", cpu_trial.error
    assert len(cpu_trial.times_ms) == 3
    logdir, capture = (Path(a) for a in cpu_trial.artifacts)
    assert logdir.is_dir() and capture.is_file()
    assert capture.name.endswith(".xplane.pb") and logdir in capture.parents
    assert cpu_trial.kernels, "the op table is empty"
    assert all(k["total_ns"] > 0 and k["calls"] >= 1 for k in cpu_trial.kernels)
    types = {k["short_name"] for k in cpu_trial.kernels}
    assert any("Conv2D" in t for t in types), types
    # every op of the step ran once per timed iteration
    assert all(k["calls"] % 3 == 0 for k in cpu_trial.kernels)


@pytest.mark.slow
@needs_tf
def test_trace_summarize_reads_the_captured_xplane(cpu_trial):
    assert cpu_trial.status == "ok", cpu_trial.error
    capture = cpu_trial.artifacts[1]
    proc = run_cli("trace", "summarize", capture, "--format", "csv", timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert rows and all(int(r["total_ns"]) > 0 for r in rows)
    stored = {k["name"]: k["total_ns"] for k in cpu_trial.kernels}
    assert {r["name"]: int(r["total_ns"]) for r in rows} == stored


@needs_tf
def test_gpu_planes_give_their_stream_kernels_without_copies(tmp_path: Path):
    from nnr_profile.profiler.traces import read_kernels, summarize_trace
    from nnr_profile.profiler.traces.formats.tf_xplane import _xspace_class

    space = _xspace_class()()  # loaded from TF's xplane_pb2.py without importing TensorFlow
    host = space.planes.add(name="/host:CPU")
    host.lines.add(name="python")
    gpu = space.planes.add(name="/device:GPU:1")
    gpu.stat_metadata[1].name = "kernel_details"
    for key, name in ((1, "void cutlass::Kernel<float>(Params)"), (2, "MemcpyH2D")):
        gpu.event_metadata[key].id = key
        gpu.event_metadata[key].name = name
    stream = gpu.lines.add(name="Stream #13(Compute)", timestamp_ns=1000)
    for offset_ps, duration_ps in ((0, 2_499), (5_000_000, 1_500)):
        event = stream.events.add(metadata_id=1, offset_ps=offset_ps, duration_ps=duration_ps)
        event.stats.add(metadata_id=1, str_value="regs:32")
    stream.events.add(metadata_id=2, offset_ps=9_000_000, duration_ps=7_000)
    path = tmp_path / "gpu.xplane.pb"
    path.write_bytes(space.SerializeToString())
    frame = read_kernels(path)
    assert frame.attrs["format"] == "tf-xplane"
    assert list(frame["duration_ns"]) == [2, 2] and list(frame["start_ns"]) == [1000, 6000]
    assert set(frame["device"]) == {1} and set(frame["short_name"]) == {"Kernel"}
    (row,) = summarize_trace(path).to_dict("records")
    assert (row["calls"], row["total_ns"]) == (2, 4)
