"""TensorFlow checks run in a child process: TF and torch's triton crash when loaded in one.

`python tests/workloads/tf_probe.py` prints one JSON object with what
tests/workloads/test_tf_workloads.py asserts.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace

from nnr_profile.core.errors import MissingDependencyError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.runner.trial import run_trial
from nnr_profile.workloads.adapter import get_adapter
from nnr_profile.workloads.registry import get_workload
from nnr_profile.workloads.tf.models import KERAS_APPLICATIONS

SMALL_CASES = [
    ("smallcnn", {"bn": True}, 8),
    ("mediumcnn", {"kernel": 5}, 64),
    ("resnet18", {}, 32),
    ("lenet", {"dropout": 0.5, "conv_dropout": 0.25}, 28),
    ("mlp", {"norm": "batch", "dropout": 0.1}, None),
    ("mlp", {"norm": "layer"}, None),
    ("embedding_lm", {"d_model": 16, "heads": 2, "layers": 1}, None),
    ("keras_mnist_cnn", {}, 12),
    ("calibrate", {"layers": 5}, None),
    ("mobilenet", {}, 32),
]


def one_step(name: str, args: dict, side: int | None) -> dict:
    """Build at a tiny size, train one step: loss finite, weights changed?"""
    workload = get_workload("tf", name)
    adapter = get_adapter("tf")
    adapter.seed(0)
    resolved = workload.validate(args, side)
    session = adapter.prepare(
        workload, resolved, MODES["default"], 2, workload.shape_for(side), "cpu"
    )
    before = session.weights_hash()
    loss = session.loss_value(session.step())
    session.sync()
    return {"finite": math.isfinite(loss), "changed": session.weights_hash() != before}


def calibrate_modes() -> dict[str, dict]:
    """A tiny calibrate trial at overhead 0.5 per mode: Dense layers, injection, losses, hash."""
    import keras

    results = {}
    for mode in ("default", "deterministic"):
        spec = TrialSpec(
            "tf",
            "calibrate",
            MODES[mode],
            batch_size=8,
            warmup=1,
            iterations=3,
            workload_args={"overhead": 0.5, "layers": 2},
        )
        result = run_trial(spec)
        workload = get_workload("tf", "calibrate")
        args = workload.validate(spec.workload_args, None)
        session = get_adapter("tf").prepare(
            workload, args, MODES[mode], 2, workload.input_shape, "cpu"
        )
        results[mode] = {
            "status": result.status,
            "error": result.error,
            "dense": sum(isinstance(x, keras.layers.Dense) for x in session.model.layers),
            "weights": len(session.model.weights),
            "injected": result.knobs_applied.get("injected_work"),
            "losses": result.losses,
            "hash": result.weights_hash,
        }
    return results


NEW_MODELS = ["efficientnet_b3", "efficientnet_b5", "efficientnet_b6"]
TIMM_TWINS = ["xception", "mobilenet"]


def trainable_parameters(name: str) -> int:
    """Trainable parameters of the TF workload at its default shape, 1000 classes."""
    from nnr_profile.workloads.registry import BuildContext

    workload = get_workload("tf", name)
    model = workload.builder(BuildContext({}, "default", workload.input_shape, 1000))
    return sum(int(v.numpy().size) for v in model.trainable_variables)


def repeat_trials() -> dict:
    """The same default-mode trial twice with seed 0, once with seed 1."""
    spec = TrialSpec(
        "tf", "smallcnn", MODES["default"], batch_size=4, image_size=16, warmup=1, iterations=3
    )
    runs = [run_trial(spec), run_trial(spec), run_trial(replace(spec, seed=1))]
    return {
        "status": [r.status for r in runs],
        "errors": [r.error for r in runs],
        "losses": [r.losses for r in runs],
        "hashes": [r.weights_hash for r in runs],
        "times_ms": runs[0].times_ms,
    }


def gpu_refusal() -> str | None:
    """The error when a session asks for a GPU that TF does not see (None if TF sees one)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return None
    try:
        workload = get_workload("tf", "mlp")
        get_adapter("tf").prepare(workload, {}, MODES["default"], 2, (784,), "cuda")
    except MissingDependencyError as exc:
        return str(exc)
    return "no error"


def main() -> int:
    """Run every check and print the results as JSON."""
    import keras
    import tensorflow as tf

    result = {
        "tf_version": tf.__version__,
        "keras_version": keras.__version__,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "missing_applications": [
            c for c, _, _ in KERAS_APPLICATIONS.values() if not hasattr(keras.applications, c)
        ],
        "steps": [{"name": n, "args": a, **one_step(n, a, side)} for n, a, side in SMALL_CASES],
        "new_models": [{"name": n, **one_step(n, {}, 32)} for n in NEW_MODELS],
        "trainable": {n: trainable_parameters(n) for n in TIMM_TWINS},
        "calibrate": calibrate_modes(),
        "repeats": repeat_trials(),
        "gpu_refusal": gpu_refusal(),
        "environment": get_adapter("tf").environment(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
