"""TensorFlow's determinism knobs: the environment they need, version checks, and the code.

`mode_environment` is what the trial's process must start with: CUBLAS_WORKSPACE_CONFIG for
`cublas_workspace`, and for `tf_op_determinism` on TensorFlow older than 2.8 (read from its
package metadata, not imported) TF_DETERMINISTIC_OPS / TF_CUDNN_DETERMINISTIC. The runner puts
it into the child's environment. `apply_tf_mode` calls `enable_op_determinism` where it exists
and records what the process runs with.
"""

from __future__ import annotations

import os
from functools import cache

from nnr_profile.core.environment import installed_version, version_numbers
from nnr_profile.core.modes import Mode

CUBLAS_WORKSPACE_CONFIG = ":4096:8"
"""cuBLAS's deterministic workspace setting, as for PyTorch."""
TF_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tensorflow-macos",
    "tf-nightly",
)
OP_DETERMINISM_SINCE = (2, 8)
"""The first TensorFlow with `tf.config.experimental.enable_op_determinism`."""
OP_DETERMINISM_VARIABLES = ("TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC")
"""What makes TensorFlow older than 2.8 deterministic."""

KNOB_SETTINGS: dict[str, str] = {
    "cublas_workspace": f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE_CONFIG}",
    "tf_op_determinism": (
        "tf.config.experimental.enable_op_determinism() "
        "(TF < 2.8: TF_DETERMINISTIC_OPS=1, TF_CUDNN_DETERMINISTIC=1)"
    ),
}
"""What each knob TensorFlow reads sets, in TensorFlow's own terms."""

COLD_START_REASON = (
    "TensorFlow starts its thread pools when it is imported, and a fork of a threaded process "
    "is not safe, so each trial starts a fresh interpreter"
)
"""Why TensorFlow trials start cold (`profiler.runner.warm`)."""


@cache
def tf_has_op_determinism() -> bool:
    """Whether the installed TensorFlow (read from its metadata, not imported) is 2.8 or newer."""
    for name in TF_DISTRIBUTIONS:
        version = installed_version(name)
        if version is not None:
            return version_numbers(version, 2) >= OP_DETERMINISM_SINCE
    return False


def mode_environment(mode: Mode) -> dict[str, str]:
    """Environment variables `mode` needs before TensorFlow starts (empty when none)."""
    env: dict[str, str] = {}
    if mode.is_on("cublas_workspace"):
        env["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    if mode.is_on("tf_op_determinism") and not tf_has_op_determinism():
        env.update(dict.fromkeys(OP_DETERMINISM_VARIABLES, "1"))
    return env


def apply_tf_mode(mode: Mode) -> dict[str, object]:
    """Apply the mode's TensorFlow knobs in this process; return what was set, for the record."""
    import tensorflow as tf

    applied: dict[str, object] = {}
    if mode.is_on("tf_op_determinism"):
        enable = getattr(tf.config.experimental, "enable_op_determinism", None)
        if enable is not None:
            enable()
            applied["op_determinism"] = "tf.config.experimental.enable_op_determinism"
        else:
            applied["op_determinism"] = "environment (TF without enable_op_determinism)"
            for name in OP_DETERMINISM_VARIABLES:
                applied[name] = os.environ.get(name)
    if "cublas_workspace" in mode.knobs:
        applied["CUBLAS_WORKSPACE_CONFIG"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    return applied
