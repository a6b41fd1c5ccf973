"""Each framework's knob code: the environment a mode needs and the flags it sets (real torch)."""

import pytest
import torch

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import FRAMEWORK_KNOBS, MODES, ladder, parse_mode
from nnr_profile.workloads.knobs import knob_settings, mode_environment
from nnr_profile.workloads.tf import knobs as tf_knobs
from nnr_profile.workloads.torch.knobs import apply_torch_mode


def test_each_framework_names_what_every_knob_it_reads_sets():
    for framework, read in FRAMEWORK_KNOBS.items():
        assert set(knob_settings(framework)) == read
    assert "CUBLAS_WORKSPACE_CONFIG" in knob_settings("tf")["cublas_workspace"]
    with pytest.raises(UsageError, match="mxnet"):
        mode_environment(MODES["default"], "mxnet")


def test_cublas_workspace_is_a_knob_of_its_own_in_both_frameworks(monkeypatch):
    cublas = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    step1 = ladder()[1]
    for framework in ("torch", "tf"):
        assert mode_environment(MODES["default"], framework) == {}
        assert mode_environment(step1, framework) == cublas
        assert mode_environment(MODES["deterministic"], framework) == cublas
    assert mode_environment(parse_mode("tf_op_determinism"), "tf") == {}
    monkeypatch.setattr(tf_knobs, "tf_has_op_determinism", lambda: False)  # TF < 2.8
    old = mode_environment(parse_mode("tf_op_determinism"), "tf")
    assert old == {"TF_DETERMINISTIC_OPS": "1", "TF_CUDNN_DETERMINISTIC": "1"}


def test_apply_torch_mode_sets_the_real_flags():
    try:
        applied = apply_torch_mode(MODES["deterministic"])
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic is True
        assert torch.backends.cudnn.benchmark is False
        assert torch.utils.deterministic.fill_uninitialized_memory is True
        assert applied["deterministic_algorithms"] is True
        assert "CUBLAS_WORKSPACE_CONFIG" in applied
        apply_torch_mode(parse_mode("deterministic_algorithms"))
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.utils.deterministic.fill_uninitialized_memory = True
