"""A replica spec validates through core/params, and a replica runs as a child task."""

import math

import numpy as np
import pytest

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import STATUS_FAILED, STATUS_OK
from nnr_profile.studies.replica import ReplicaSpec, launch_replica

DEFAULT = MODES["default"]


def _spec(**changes):
    fields = {
        "framework": "torch",
        "workload": "mlp",
        "dataset": "digits",
        "setting": "control",
        "replica": 0,
        "init_seed": 0,
        "data_seed": 1,
        "mode": DEFAULT,
        "epochs": 1,
        "batch_size": 64,
    }
    return ReplicaSpec(**{**fields, **changes})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", math.nan),
        ("epochs", math.inf),
        ("epochs", 0),
        ("batch_size", math.nan),
        ("batch_size", 0),
        ("learning_rate", math.nan),
        ("learning_rate", math.inf),
        ("learning_rate", 0),
        ("init_seed", -1),
        ("data_seed", math.nan),
    ],
)
def test_a_replica_spec_refuses_nan_inf_and_zero(field, value):
    with pytest.raises(ParameterError, match=field):
        _spec(**{field: value})


@pytest.mark.slow
def test_a_replica_comes_back_from_its_child_with_its_weights():
    result = launch_replica(_spec(), timeout_s=300)
    assert result.status == STATUS_OK, result.error
    assert isinstance(result.weights, np.ndarray) and result.weights.dtype == np.float32
    assert len(result.predictions) == len(result.labels) > 0
    failed = launch_replica(_spec(workload_args={"no_such_argument": 1}), timeout_s=300)
    assert failed.status == STATUS_FAILED and failed.weights is None and failed.error
