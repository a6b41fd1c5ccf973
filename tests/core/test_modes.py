import itertools

import pytest

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import KNOBS, MODES, parse_mode, parse_modes


def test_named_modes_are_knob_sets():
    assert MODES["default"].knobs == {}
    assert MODES["fast"].knobs == {"cudnn_benchmark": True}
    deterministic = MODES["deterministic"]
    assert set(deterministic.knobs) == set(KNOBS)
    assert deterministic.is_on("deterministic_algorithms")
    assert not deterministic.is_on("cudnn_benchmark")


def test_ladder_mode_turns_on_listed_knobs_only():
    mode = parse_mode("cudnn_deterministic+cublas_workspace")
    assert mode.name == "cudnn_deterministic+cublas_workspace"
    assert {k for k, v in mode.knobs.items() if v} == {"cudnn_deterministic", "cublas_workspace"}
    assert set(mode.knobs) == set(KNOBS)


def test_parse_modes_keeps_order_and_drops_repeats():
    assert [m.name for m in parse_modes("deterministic, default,deterministic")] == [
        "deterministic",
        "default",
    ]


@pytest.mark.parametrize("text", ["determinstic", "cudnn_deterministic+bogus", ""])
def test_unknown_mode_is_a_usage_error(text):
    with pytest.raises(UsageError, match=r"mode|--modes"):
        parse_modes(text)


def test_ladder_is_cumulative_and_ends_at_deterministic():
    from nnr_profile.core.modes import MODES, ladder, parse_modes, same_as_default

    steps = parse_modes("ladder")
    assert [m.name for m in steps] == [
        "default",
        "step1_cublas_workspace",
        "step2_cudnn_deterministic",
        "step3_deterministic_algorithms",
        "deterministic",
    ]
    on = [{k for k, v in m.knobs.items() if v} for m in steps]
    assert all(a <= b for a, b in itertools.pairwise(on))
    assert steps[2].knobs["cudnn_benchmark"] is False
    assert steps[-1] == MODES["deterministic"] and ladder()[-1] is MODES["deterministic"]
    tf_steps = [m.name for m in steps if not same_as_default(m, "tf")]
    assert tf_steps == ["default", "step1_cublas_workspace", "deterministic"]
    assert steps[1].frameworks is None and steps[2].frameworks == steps[3].frameworks == ("torch",)
    assert parse_modes("ladder,default,fast")[-1].name == "fast"


def test_a_step_survives_the_round_trip_and_fill_alone_is_refused():
    import pytest

    from nnr_profile.core.errors import UsageError
    from nnr_profile.core.modes import Mode, ladder, parse_mode

    step = ladder()[2]
    assert Mode.from_dict(step.to_dict()) == step
    assert parse_mode("step2_cudnn_deterministic") == step
    with pytest.raises(UsageError, match="without deterministic_algorithms"):
        parse_mode("fill_uninitialized_memory")
