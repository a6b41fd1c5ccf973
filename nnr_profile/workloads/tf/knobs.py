"""Apply a mode's TensorFlow knobs in the trial process."""

from __future__ import annotations

import os

from nnr_profile.core.modes import Mode


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
            for name in ("TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC"):
                applied[name] = os.environ.get(name)
    return applied
