import itertools

import pytest
import torch

from nnr_profile.core import modes as determinism
from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import KNOBS, MODES, mode_env, parse_mode, parse_modes
from nnr_profile.workloads.torch.knobs import apply_torch_mode


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


def test_mode_env_sets_cublas_and_tf_variables(monkeypatch):
    assert mode_env(MODES["default"], "torch") == {}
    assert mode_env(MODES["deterministic"], "torch") == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    monkeypatch.setattr(determinism, "tf_has_op_determinism", lambda: False)  # TF < 2.8
    tf_env = mode_env(MODES["deterministic"], "tf")
    assert tf_env["TF_DETERMINISTIC_OPS"] == "1"
    assert tf_env["TF_CUDNN_DETERMINISTIC"] == "1"


def test_apply_torch_mode_sets_the_real_flags():
    try:
        applied = apply_torch_mode(MODES["deterministic"])
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic is True
        assert torch.backends.cudnn.benchmark is False
        assert torch.utils.deterministic.fill_uninitialized_memory is True
        assert applied["deterministic_algorithms"] is True
        apply_torch_mode(parse_mode("deterministic_algorithms"))
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.utils.deterministic.fill_uninitialized_memory = True


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
    assert [m.name for m in steps if not same_as_default(m, "tf")] == ["default", "deterministic"]
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
