"""`flat_non_trainable`: the BatchNorm moving statistics a replica stores, in both frameworks.

The TensorFlow check runs in a child (TF and torch crash when loaded in one process).
"""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import cli_env
from torch import nn

from nnr_profile.workloads.torch.training import flat_non_trainable, flat_weights

TF_CHECK = """
import json
import keras
import numpy as np
from nnr_profile.workloads.tf.training import flat_non_trainable, flat_weights
inputs = keras.Input((4, 4, 1))
x = keras.layers.Conv2D(2, 3)(inputs)
x = keras.layers.BatchNormalization()(x)
x = keras.layers.Dropout(0.5)(x)
outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
model = keras.Model(inputs, outputs)
bn = model.layers[2]
bn.moving_mean.assign(np.array([0.5, -0.5], np.float32))
bn.moving_variance.assign(np.array([2.0, 3.0], np.float32))
stats = flat_non_trainable(model)
print(json.dumps({
    "stats": stats.tolist(), "dtype": str(stats.dtype), "trainable": int(flat_weights(model).size),
    "all": int(sum(np.prod(v.shape) for v in model.weights)),
}))
"""


def test_torch_keeps_the_running_statistics_and_leaves_out_the_batch_counter():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        model[1].running_mean.copy_(torch.tensor([0.5, -0.5]))
        model[1].running_var.copy_(torch.tensor([2.0, 3.0]))
    stats = flat_non_trainable(model)
    assert stats.dtype == np.float32
    assert stats.tolist() == [0.5, -0.5, 2.0, 3.0]  # 1.running_mean, then 1.running_var
    assert flat_weights(model).size == sum(p.numel() for p in model.parameters())
    assert flat_non_trainable(nn.Linear(2, 2)).size == 0


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)
@pytest.mark.slow
def test_keras_keeps_the_moving_statistics_and_not_the_dropout_seed():
    proc = subprocess.run(
        [sys.executable, "-c", TF_CHECK],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["dtype"] == "float32"
    assert out["stats"] == [0.5, -0.5, 2.0, 3.0]  # moving_mean, then moving_variance
    assert out["trainable"] + len(out["stats"]) == out["all"]  # model.weights, as the study
