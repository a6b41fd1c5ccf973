"""The `jax-profiler` collector: the JAX profiler over the timed iterations, kept as XPlane.

`jax.profiler.start_trace(logdir)` / `stop_trace()` bracket the timed loop (in the trial's
process, no command prefix) and every timed iteration is a
`jax.profiler.StepTraceAnnotation("iteration <i>", step_num=i)`, so the capture opens in
TensorBoard's profile plugin (or XProf) with one step per iteration. `logdir` is
`<artifact>.jaxprof/`; JAX writes `<logdir>/plugins/profile/<run>/<host>.xplane.pb` (and a
`.trace.json.gz` beside it). Both the folder and the `.xplane.pb` file are kept as artifacts.

The stored table is read from the `.xplane.pb` by the project's XPlane reader (`tf-xplane`, so it
equals `nnr-profile trace summarize`): the GPU kernels on a GPU; on the CPU, where XLA runs no
kernels, the XLA CPU op table (one row per HLO op the CPU runtime executed, e.g. `fusion.3`,
short name its kind `fusion`; see `nnr_profile.profiler.traces.formats.tf_xplane`). Reading the
file needs TensorFlow's XPlane protobuf module, so `check` refuses the collector where
TensorFlow is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnr_profile.profiler.collectors.base import (
    ARTIFACT_DIR_ENV,
    Collector,
    artifact_base,
    kernel_rows,
)

if TYPE_CHECKING:
    from nnr_profile.core.specs import TrialResult, TrialSpec

LOGDIR_SUFFIX = ".jaxprof"


def logdir_for(base: Path) -> Path:
    """The profiler log folder of the trial whose artifact base is `base`."""
    return base.with_name(base.name + LOGDIR_SUFFIX)


def _options() -> Any:
    """Profiler options without the Python tracer (it would slow the timed loop's Python);
    None where this JAX has no `ProfileOptions` (its defaults then)."""
    import jax

    options_class = getattr(jax.profiler, "ProfileOptions", None)
    if options_class is None:
        return None
    options = options_class()
    options.python_tracer_level = 0
    return options


class _Profiling:
    """Context manager: the JAX profiler on for the body, writing into `logdir`."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir

    def __enter__(self) -> _Profiling:
        import jax

        self.logdir.mkdir(parents=True, exist_ok=True)
        jax.profiler.start_trace(str(self.logdir), profiler_options=_options())
        return self

    def __exit__(self, *exc: object) -> None:
        import jax

        jax.profiler.stop_trace()


class JaxProfilerCollector(Collector):
    """jax.profiler around the timed loop; kernel (GPU) or XLA op (CPU) table from the XPlane."""

    name = "jax-profiler"
    kernel_level = True
    description = "JAX profiler (XPlane): per-kernel times (CPU: XLA ops), .xplane.pb kept"

    def __init__(self) -> None:
        self._logdir: Path | None = None

    def check(self, framework: str, gpus: Any) -> None:
        """Only JAX workloads, and only where TensorFlow's XPlane protobuf module can be read."""
        from nnr_profile.core.errors import UsageError

        if framework != "jax":
            raise UsageError(
                f"--collector jax-profiler observes JAX only, not {framework}; "
                "use torch-profiler (PyTorch), tf-profiler (TensorFlow) or nsys"
            )
        if importlib.util.find_spec("tensorflow") is None:
            raise UsageError(
                "--collector jax-profiler reads its .xplane.pb with TensorFlow's protobuf "
                "module; install tensorflow-cpu (or use nsys)"
            )

    def timed_region(self, spec: TrialSpec) -> Any:
        """Start the JAX profiler, logging next to the trial's other artifacts."""
        folder = Path(os.environ.get(ARTIFACT_DIR_ENV) or tempfile.gettempdir())
        self._logdir = logdir_for(artifact_base(spec, folder))
        return _Profiling(self._logdir)

    def iteration(self, index: int) -> Any:
        """One profiler step per timed iteration, visible in TensorBoard and XProf."""
        import jax

        return jax.profiler.StepTraceAnnotation(f"iteration {index}", step_num=index)

    def collect(self, result: TrialResult, artifact_base: Path) -> None:
        """Keep the log folder and store the kernel (GPU) or XLA op (CPU) table of its capture."""
        from nnr_profile.core.errors import TraceError
        from nnr_profile.profiler.traces import kernel_stats

        logdir = self._logdir or logdir_for(artifact_base)
        captures = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))
        if not captures:
            raise TraceError(f"the JAX profiler wrote no .xplane.pb under {logdir}")
        result.artifacts += [str(logdir), str(captures[-1])]
        result.kernels = kernel_rows(kernel_stats(captures[-1], "tf-xplane"))
