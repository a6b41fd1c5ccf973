"""Each framework's knob code, found by framework name without importing the framework.

The runner asks here for the environment a mode needs (`mode_environment`) before it starts a
trial's process; the knob modules themselves import torch or TensorFlow only inside the code
that applies the in-process flags.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import FRAMEWORK_KNOBS, Mode

KNOB_MODULES = {
    "torch": "nnr_profile.workloads.torch.knobs",
    "tf": "nnr_profile.workloads.tf.knobs",
    "jax": "nnr_profile.workloads.jax.knobs",
}


def knob_module(framework: str) -> ModuleType:
    """The knob module of `framework` (`nnr_profile.workloads.<framework>.knobs`)."""
    if framework not in KNOB_MODULES:
        raise UsageError(f"no knobs for framework {framework!r}: use {', '.join(KNOB_MODULES)}")
    return importlib.import_module(KNOB_MODULES[framework])


def mode_environment(mode: Mode, framework: str) -> dict[str, str]:
    """Environment variables `mode` needs before `framework` starts (empty when none)."""
    return knob_module(framework).mode_environment(mode)


def knob_settings(framework: str) -> dict[str, str]:
    """Knob name -> what it sets in `framework`, for the knobs that framework reads."""
    settings = knob_module(framework).KNOB_SETTINGS
    return {knob: settings[knob] for knob in sorted(FRAMEWORK_KNOBS[framework])}
