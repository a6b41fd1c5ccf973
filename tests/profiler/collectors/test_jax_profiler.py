"""The jax-profiler collector and the XPlane reader's XLA CPU op table, on real JAX captures.

JAX runs in this process (a capture made here) and in the CLI's trial processes; TensorFlow is
never imported: the reader loads TensorFlow's XPlane protobuf module from its file.
"""

import csv
import importlib.util
import io
from pathlib import Path

import pytest
from conftest import run_cli

from nnr_profile.core.errors import UsageError
from nnr_profile.profiler.collectors.base import get_collector, parse_collectors
from nnr_profile.store.database import Store

MISSING = [n for n in ("jax", "flax", "optax", "tensorflow") if importlib.util.find_spec(n) is None]
needs_jax_and_tf = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not installed (jax-profiler reads with TF)"
)
ITERATIONS = 2


def test_jax_profiler_is_registered_and_refuses_other_frameworks():
    assert parse_collectors("jax-profiler") == ["timing", "jax-profiler"]
    collector = get_collector("jax-profiler")
    assert collector.kernel_level
    for framework in ("torch", "tf"):
        with pytest.raises(UsageError, match=r"JAX only, not " + framework):
            collector.check(framework, [None])


def test_a_non_jax_run_with_the_jax_profiler_is_one_line_exit_2(db):
    proc = run_cli(
        "run", "--model", "mlp", "--framework", "torch", "--gpu", "cpu",
        "--collector", "jax-profiler", "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "JAX only" in lines[0], proc.stderr


@needs_jax_and_tf
def test_xla_cpu_ops_of_a_capture_made_here_are_the_op_table(tmp_path: Path):
    import jax
    import jax.numpy as jnp

    from nnr_profile.profiler.traces import kernel_stats, read_kernels

    def step(x: jax.Array) -> jax.Array:
        return jnp.tanh(x @ x).sum()

    x = jnp.ones((32, 32))
    compiled = jax.jit(step).lower(x).compile()
    step_jit = jax.jit(step)
    step_jit(x).block_until_ready()
    jax.profiler.start_trace(str(tmp_path))
    for i in range(3):
        with jax.profiler.StepTraceAnnotation("iteration", step_num=i):
            step_jit(x).block_until_ready()
    jax.profiler.stop_trace()
    (capture,) = tmp_path.glob("plugins/profile/*/*.xplane.pb")
    frame = read_kernels(capture)
    assert frame.attrs["format"] == "tf-xplane"
    assert len(frame) >= 3 and set(frame["device"]) == {-1}
    assert (frame["duration_ns"] > 0).all()
    hlo = compiled.as_text()
    stats = kernel_stats(capture)
    # only the HLO ops of the compiled step: no runtime, thread-pool or Python events
    assert all(k.name in hlo and k.calls == 3 for k in stats), [(k.name, k.calls) for k in stats]


@needs_jax_and_tf
def test_hlo_op_events_are_rows_and_runtime_events_are_not(tmp_path: Path):
    from nnr_profile.profiler.traces import kernel_stats
    from nnr_profile.profiler.traces.formats.tf_xplane import _xspace_class

    space = _xspace_class()()
    host = space.planes.add(name="/host:CPU")
    host.stat_metadata[7].name = "hlo_op"
    names = {1: "broadcast_add_fusion.2", 2: "end: broadcast_add_fusion.2", 3: "copy"}
    for key, name in names.items():
        host.event_metadata[key].id = key
        host.event_metadata[key].name = name
    line = host.lines.add(name="tf_XLAEigen/1", timestamp_ns=100)
    for offset_ps, duration_ps in ((0, 1_499), (4_000, 2_500)):
        event = line.events.add(metadata_id=1, offset_ps=offset_ps, duration_ps=duration_ps)
        event.stats.add(metadata_id=7, ref_value=1)
    line.events.add(metadata_id=2, offset_ps=9_000, duration_ps=9_000)  # no hlo_op: left out
    copy = line.events.add(metadata_id=3, offset_ps=20_000, duration_ps=5_000)
    copy.stats.add(metadata_id=7, ref_value=3)
    path = tmp_path / "host.xplane.pb"
    path.write_bytes(space.SerializeToString())
    rows = {(k.name, k.short_name, k.calls, k.total_ns) for k in kernel_stats(path)}
    assert rows == {
        ("broadcast_add_fusion.2", "broadcast_add_fusion", 2, 4),
        ("copy", "copy", 1, 5),
    }


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory) -> tuple[Path, str]:
    """A real `run --framework jax --collector timing,jax-profiler` on the CPU, and its stdout."""
    db = tmp_path_factory.mktemp("jaxprof") / "results" / "nnr.db"
    proc = run_cli(
        "run", "--model", "mlp", "--framework", "jax", "--gpu", "cpu",
        "--batch-size", "2", "--iterations", str(ITERATIONS), "--warmup", "1",
        "--repeats", "1", "--modes", "default", "--collector", "timing,jax-profiler",
        "--db", str(db),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return db, proc.stdout


@pytest.mark.slow
@needs_jax_and_tf
def test_run_stores_the_xla_cpu_op_table_and_keeps_the_capture(jax_run):
    db, stdout = jax_run
    assert "2 trial(s) run" in stdout, stdout
    with Store(db, create=False) as store:
        trials = store.trials()
        kernels = store.kernels()
    assert set(trials["collector"]) == {"timing", "jax-profiler"}
    assert set(kernels["collector"]) == {"jax-profiler"} and len(kernels) > 10
    assert (kernels["total_ns"] > 0).all()
    assert (kernels["calls"] % ITERATIONS == 0).all(), kernels[["name", "calls"]]
    assert {"dot", "copy"} <= set(kernels["short_name"]), set(kernels["short_name"])
    (capture,) = db.parent.glob("traces/*.jaxprof/plugins/profile/*/*.xplane.pb")
    proc = run_cli("trace", "summarize", str(capture), "--format", "csv", timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: int(r["total_ns"]) for r in csv.DictReader(io.StringIO(proc.stdout))}
    assert rows == dict(zip(kernels["name"], kernels["total_ns"], strict=True))
