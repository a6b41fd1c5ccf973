"""TensorFlow and JAX profiler output: ``<host>.xplane.pb`` (an ``XSpace`` protobuf).

``tf.profiler.experimental.start(logdir)`` / ``stop()`` and ``jax.profiler.start_trace(logdir)``
/ ``stop_trace()`` write ``logdir/plugins/profile/<run>/<host>.xplane.pb``. The file is parsed
with TensorFlow's own message class (``tensorflow/tsl/profiler/protobuf/xplane_pb2.py``),
loaded from its file so that reading a trace does not start TensorFlow (only ``google.protobuf``
is imported); when that file is not where expected, ``tensorflow.tsl.profiler.protobuf.xplane_pb2``
is imported. JAX ships no such module: reading a JAX capture needs TensorFlow installed too.

What becomes a row (:data:`~.schema.KERNEL_COLUMNS`):

- GPU planes (``/device:GPU:<n>``): the kernel events on their stream lines (lines named
  ``Stream ...``); the event metadata name is the kernel name. Memory copies and sets are left
  out: when the plane's events carry ``kernel_details`` stats only those events count, else
  events named ``Memcpy*``/``Memset*`` are dropped. ``device`` is ``<n>``; ``gpu_name`` is None.
- No GPU plane (a CPU run): the TensorFlow op table from the ``/host:CPU`` plane. A raw capture
  has no ``TensorFlow Ops`` line (TensorBoard derives that line when it converts the file);
  its lines are threads (``python``, ``tf_Compute/<id>``, ...). An op execution there is an event
  named ``<op name>:<op type>`` whose metadata ``display_name`` is the op type, e.g.
  ``sgd/Mul:Mul``; other trace events (``ExecutorState::Process``, ``EagerExecute``, user
  ``Trace`` ranges) have no display name and are left out. When a line named
  ``TensorFlow Ops`` does exist (a converted file), only that line is read, so no op counts
  twice. ``name`` is the event name, ``short_name`` the op type, ``device`` -1.
- A CPU capture without TensorFlow ops (JAX's ``jax.profiler`` on the CPU): the XLA CPU op
  table. XLA runs no kernels on the CPU; its runtime executes one thunk per HLO op, an event on
  a thread-pool line whose stats carry ``hlo_op`` (and ``hlo_module``), named after the op, e.g.
  ``broadcast_add_fusion.2`` or ``copy.66``; the runtime's own events (``ThunkExecutor::Execute``,
  ``end: <op>``, thread-pool regions, Python calls) carry no ``hlo_op`` and are left out.
  ``name`` is the HLO op name, ``short_name`` that name without its ``.<n>`` suffix (the op's
  kind, ``copy``), ``device`` -1. A control-flow op (``while``, ``conditional``) is a row of its
  own whose time includes the ops it ran, which are rows too.

Times: ``start_ns`` is the line's ``timestamp_ns`` plus the event's ``offset_ps``, and
``duration_ns`` the event's ``duration_ps``, each rounded to the nearest ns (halves up);
``end_ns`` is ``start_ns + duration_ns``.

Bounds: the file is parsed whole (protobuf has no streaming parser, so memory is linear in
its size; protobuf refuses nesting past its own recursion limit), and an event name or display
name over :data:`~.limits.MAX_FIELD_BYTES` bytes is refused before any row is built.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnr_profile.core.errors import TraceError
from nnr_profile.profiler.traces.base import Probe, TraceReader, register_reader
from nnr_profile.profiler.traces.files import check_file
from nnr_profile.profiler.traces.limits import MAX_FIELD_BYTES, too_long
from nnr_profile.profiler.traces.names import short_from_demangled
from nnr_profile.profiler.traces.schema import (
    TraceSummary,
    add_launch,
    aggregate_columns,
    kernel_frame,
    new_kernel_columns,
)

if TYPE_CHECKING:
    import pandas as pd

HOST_PLANE = "/host:CPU"
OPS_LINE = "TensorFlow Ops"
HLO_OP_STAT = "hlo_op"
_NUMBERED = re.compile(r"\.\d+$")
_GPU_PLANE = re.compile(r"^/device:GPU:(\d+)$")
_MODULE = "tensorflow/tsl/profiler/protobuf/xplane_pb2.py"


@functools.cache
def _xspace_class() -> Any:
    """TensorFlow's XSpace message class, without importing TensorFlow where possible."""
    if "tensorflow" in sys.modules:  # TF is up: its own module shares the descriptor pool
        return _imported_xspace_class()
    try:
        found = importlib.util.find_spec("tensorflow")
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise TraceError(
            "reading TensorFlow profiler (.xplane.pb) files needs TensorFlow; "
            "install tensorflow (or tensorflow-cpu)"
        )
    for root in found.submodule_search_locations:
        source = Path(root).parent / _MODULE
        if source.is_file():
            spec = importlib.util.spec_from_file_location("_nnr_xplane_pb2", source)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                try:
                    spec.loader.exec_module(module)
                    return module.XSpace
                except Exception:  # e.g. already in the default pool: the real import works
                    break
    return _imported_xspace_class()


def _imported_xspace_class() -> Any:
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as exc:
        raise TraceError(
            f"reading TensorFlow profiler (.xplane.pb) files needs TensorFlow ({exc})"
        ) from None
    return xplane_pb2.XSpace


def load_xspace(path: Path) -> Any:
    """The parsed ``XSpace`` of an ``.xplane.pb`` file."""
    xspace_class = _xspace_class()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read {path} ({exc.strerror}); check the file") from None
    space = xspace_class()
    try:
        space.ParseFromString(raw)
    except Exception as exc:  # google.protobuf.message.DecodeError and friends
        reason = str(exc).strip().replace("\n", " ") or type(exc).__name__
        raise TraceError(
            f"{path} is not a valid TensorFlow profiler XSpace ({reason}); the file is "
            "truncated or corrupt, profile again"
        ) from None
    return space


def _ps_to_ns(value: int) -> int:
    return (value + 500) // 1000


def _stat_names(plane: Any, event: Any) -> set[str]:
    meta = plane.event_metadata.get(event.metadata_id)
    stats = list(event.stats) + (list(meta.stats) if meta is not None else [])
    return {
        plane.stat_metadata[s.metadata_id].name
        for s in stats
        if s.metadata_id in plane.stat_metadata
    }


def check_names(path: Path, plane: Any) -> None:
    """Refuse a plane with an event name or display name over the field limit."""
    for meta in plane.event_metadata.values():
        for what, text in (("an event name", meta.name), ("a display name", meta.display_name)):
            size = len(text.encode())
            if size > MAX_FIELD_BYTES:
                raise too_long(
                    path, f"{what} in plane {plane.name[:80]!r}", size, MAX_FIELD_BYTES, "bytes"
                )


def _gpu_rows(plane: Any, device: int, columns: dict[str, list[Any]]) -> None:
    lines = [line for line in plane.lines if line.name.startswith("Stream")]
    has_details = any(
        "kernel_details" in _stat_names(plane, e) for line in lines for e in line.events
    )
    for line in lines:
        for event in line.events:
            meta = plane.event_metadata.get(event.metadata_id)
            name = meta.name if meta is not None else ""
            if not name:
                continue
            if has_details:
                if "kernel_details" not in _stat_names(plane, event):
                    continue
            elif name.startswith(("Memcpy", "Memset")):
                continue
            _append(columns, line, event, name, short_from_demangled(name), device)


def _host_rows(plane: Any, columns: dict[str, list[Any]]) -> None:
    lines = [line for line in plane.lines if line.name == OPS_LINE] or list(plane.lines)
    for line in lines:
        for event in line.events:
            meta = plane.event_metadata.get(event.metadata_id)
            if meta is None or not meta.display_name:
                continue
            if not meta.name.endswith(":" + meta.display_name) and line.name != OPS_LINE:
                continue
            _append(columns, line, event, meta.name, meta.display_name, -1)


def _xla_host_rows(plane: Any, columns: dict[str, list[Any]]) -> None:
    """The XLA CPU ops of a JAX capture: events with an ``hlo_op`` stat, named after the op."""
    ids = {key for key, stat in plane.stat_metadata.items() if stat.name == HLO_OP_STAT}
    if not ids:
        return
    for line in plane.lines:
        for event in line.events:
            if not any(stat.metadata_id in ids for stat in event.stats):
                continue
            meta = plane.event_metadata.get(event.metadata_id)
            if meta is None or not meta.name:
                continue
            _append(columns, line, event, meta.name, _NUMBERED.sub("", meta.name), -1)


def _append(
    columns: dict[str, list[Any]], line: Any, event: Any, name: str, short: str, device: int
) -> None:
    start = line.timestamp_ns + _ps_to_ns(event.offset_ps)
    duration = _ps_to_ns(event.duration_ps)
    add_launch(columns, name, short, device, None, start, duration)


def xplane_columns(path: Path) -> dict[str, list[Any]]:
    """Per-execution columns: GPU kernels when the capture has GPU planes, else the host's
    TF ops (or, in a capture with none, its XLA CPU ops)."""
    path = check_file(path)
    space = load_xspace(path)
    columns = new_kernel_columns()
    gpu_planes = [(p, _GPU_PLANE.match(p.name)) for p in space.planes]
    gpu_planes = [(p, int(m.group(1))) for p, m in gpu_planes if m]
    if gpu_planes:
        for plane, device in gpu_planes:
            check_names(path, plane)
            _gpu_rows(plane, device, columns)
        if not columns["name"]:
            raise TraceError(
                f"{path} has GPU planes but no kernel events; the GPU ran nothing while profiling"
            )
        return columns
    hosts = [p for p in space.planes if p.name == HOST_PLANE]
    if not hosts:
        raise TraceError(
            f"{path} has neither a {HOST_PLANE} plane nor a GPU plane; it is not a TensorFlow "
            "profiler capture (or it is corrupt), profile again"
        )
    for plane in hosts:
        check_names(path, plane)
        _host_rows(plane, columns)
    if not columns["name"]:
        for plane in hosts:
            _xla_host_rows(plane, columns)
    if not columns["name"]:
        raise TraceError(
            f"{path} has no TensorFlow op or XLA op events; profile while the model runs "
            "(tf.profiler.experimental.start/stop or jax.profiler.start_trace/stop_trace "
            "around the steps)"
        )
    return columns


def summarize_xplane(path: Path) -> TraceSummary:
    """Per-kernel (GPU) or per-op (CPU: TF or XLA ops) statistics of an ``.xplane.pb`` file,
    without pandas."""
    return TraceSummary(aggregate_columns(xplane_columns(path)))


def read_xplane(path: Path) -> pd.DataFrame:
    """One row per kernel (GPU) or op (CPU) execution, columns :data:`~.schema.KERNEL_COLUMNS`."""
    return kernel_frame(xplane_columns(path))


def sniff_xplane(probe: Probe) -> bool:
    """Protobuf has no magic number: a file named ``*.xplane.pb``."""
    return probe.name.endswith(".xplane.pb")


READER = register_reader(
    TraceReader(
        "tf-xplane",
        "TensorFlow/JAX profiler .xplane.pb (GPU kernels; on the CPU the TF or XLA op table)",
        read_xplane,
        summarize_xplane,
        sniff_xplane,
        priority=0,
    )
)
