"""The `tf-profiler` collector: the TensorFlow profiler over the timed iterations, kept as XPlane.

`tf.profiler.experimental.start(logdir)` / `stop()` bracket the timed loop and every timed
iteration is a `tf.profiler.experimental.Trace("iteration <i>", step_num=i)` step, so the
capture opens in TensorBoard's profile plugin with one step per iteration. `logdir` is
`<artifact>.tfprof/`; TensorFlow writes `<logdir>/plugins/profile/<run>/<host>.xplane.pb`.
Both the folder (for `tensorboard --logdir`) and the file are kept as artifacts. The stored
table is read from that file by the project's reader (`tf-xplane`, so it equals
`nnr-profile trace summarize`): the GPU kernels on a GPU, on the CPU the TensorFlow op table
(one row per `<op name>:<op type>`, see `nnr_profile.profiler.traces.formats.tf_xplane`).
"""

from __future__ import annotations

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

LOGDIR_SUFFIX = ".tfprof"


def logdir_for(base: Path) -> Path:
    """The profiler log folder of the trial whose artifact base is `base`."""
    return base.with_name(base.name + LOGDIR_SUFFIX)


class _Profiling:
    """Context manager: the TF profiler on for the body, writing into `logdir`."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir

    def __enter__(self) -> _Profiling:
        import tensorflow as tf

        self.logdir.mkdir(parents=True, exist_ok=True)
        tf.profiler.experimental.start(str(self.logdir))
        return self

    def __exit__(self, *exc: object) -> None:
        import tensorflow as tf

        tf.profiler.experimental.stop()


class TfProfilerCollector(Collector):
    """tf.profiler around the timed loop; kernel (GPU) or op (CPU) table from the XPlane file."""

    name = "tf-profiler"
    kernel_level = True
    description = "TensorFlow profiler (XPlane): per-kernel times, .xplane.pb kept"

    def __init__(self) -> None:
        self._logdir: Path | None = None

    def check(self, framework: str, gpus: Any) -> None:
        """Only TensorFlow workloads can be observed by the TensorFlow profiler."""
        if framework != "tf":
            from nnr_profile.core.errors import UsageError

            raise UsageError(
                f"--collector tf-profiler observes TensorFlow only, not {framework}; "
                "use torch-profiler or nsys for PyTorch"
            )

    def timed_region(self, spec: TrialSpec) -> Any:
        """Start the TF profiler, logging next to the trial's other artifacts."""
        folder = Path(os.environ.get(ARTIFACT_DIR_ENV) or tempfile.gettempdir())
        self._logdir = logdir_for(artifact_base(spec, folder))
        return _Profiling(self._logdir)

    def iteration(self, index: int) -> Any:
        """One profiler step per timed iteration, visible in TensorBoard."""
        import tensorflow as tf

        return tf.profiler.experimental.Trace(f"iteration {index}", step_num=index, _r=1)

    def collect(self, result: TrialResult, artifact_base: Path) -> None:
        """Keep the log folder and store the kernel (GPU) or op (CPU) table of its capture."""
        from nnr_profile.core.errors import TraceError
        from nnr_profile.profiler.traces import kernel_stats

        logdir = self._logdir or logdir_for(artifact_base)
        captures = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))
        if not captures:
            raise TraceError(f"the TensorFlow profiler wrote no .xplane.pb under {logdir}")
        result.artifacts += [str(logdir), str(captures[-1])]
        result.kernels = kernel_rows(kernel_stats(captures[-1], "tf-xplane"))
