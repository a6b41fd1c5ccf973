"""Trial specs validate through core/params: NaN, infinity and out-of-range counts are refused."""

import math

import pytest

from nnr_profile.core.errors import ParameterError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec

DEFAULT = MODES["default"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iterations", math.nan),
        ("iterations", math.inf),
        ("iterations", 0),
        ("iterations", 2.5),
        ("warmup", math.nan),
        ("warmup", -1),
        ("batch_size", math.inf),
        ("batch_size", 0),
        ("image_size", 0),
        ("seed", -1),
        ("seed", 2**32),
        ("repeat", math.nan),
    ],
)
def test_a_trial_spec_refuses_what_is_not_a_count(field, value):
    with pytest.raises(ParameterError, match=field):
        TrialSpec("torch", "mlp", DEFAULT, **{field: value})


def test_a_valid_trial_spec_survives_its_round_trip():
    spec = TrialSpec("torch", "mlp", DEFAULT, warmup=0, iterations=1, image_size=None)
    assert TrialSpec.from_dict(spec.to_dict()) == spec
