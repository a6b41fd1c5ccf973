"""JAX's determinism knobs: XLA flags the trial's process starts with, chosen per jaxlib version.

XLA reads `XLA_FLAGS` once, when JAX starts its backend, so every JAX knob is environment:
`mode_environment` builds it (appended to any `XLA_FLAGS` the parent already has) and the runner
puts it into the child's environment. `xla_deterministic_ops` is
`--xla_gpu_exclude_nondeterministic_ops=true` on jaxlib 0.4.29 and newer (XLA added it in
May 2024, openxla/xla#12520: deterministic ops without turning autotuning off), and
`--xla_gpu_deterministic_ops=true` before (which also turns autotuning off). `xla_autotune_off`
is `--xla_gpu_autotune_level=0`. The version is read from jaxlib's package metadata, not by
importing it. `apply_jax_mode` records what the process really started with.
"""

from __future__ import annotations

import os
from functools import cache

from nnr_profile.core.environment import installed_version, version_numbers
from nnr_profile.core.modes import Mode

CUBLAS_WORKSPACE_CONFIG = ":4096:8"
"""cuBLAS's deterministic workspace setting, as for PyTorch and TensorFlow."""
EXCLUDE_NONDETERMINISTIC_SINCE = (0, 4, 29)
"""The first jaxlib whose XLA has `--xla_gpu_exclude_nondeterministic_ops`."""
EXCLUDE_NONDETERMINISTIC_FLAG = "--xla_gpu_exclude_nondeterministic_ops=true"
DETERMINISTIC_OPS_FLAG = "--xla_gpu_deterministic_ops=true"
AUTOTUNE_OFF_FLAG = "--xla_gpu_autotune_level=0"

KNOB_SETTINGS: dict[str, str] = {
    "cublas_workspace": f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE_CONFIG}",
    "xla_deterministic_ops": (
        f"XLA_FLAGS={EXCLUDE_NONDETERMINISTIC_FLAG} "
        f"(jaxlib < 0.4.29: {DETERMINISTIC_OPS_FLAG}, which also turns autotuning off)"
    ),
    "xla_autotune_off": f"XLA_FLAGS={AUTOTUNE_OFF_FLAG}",
}
"""What each knob JAX reads sets, in XLA's own terms."""

WARM_START_PRELOAD = (
    "jax",
    "flax",
    "optax",
    "nnr_profile.profiler.runner.trial",
    "nnr_profile.profiler.collectors.device_sampler",
    "nnr_profile.profiler.collectors.nvml",
    "nnr_profile.workloads.jax.adapter",
    "nnr_profile.workloads.jax.models",
)
"""What a warm server imports (`profiler.runner.warm`): importing JAX starts no thread and no
backend, and XLA parses `XLA_FLAGS` when the first backend starts, in the forked child (a test
shows an unknown flag failing a warm child as it fails a cold one)."""


@cache
def jaxlib_version() -> tuple[int, ...] | None:
    """The installed jaxlib's version (from its metadata, not imported), or None without it."""
    version = installed_version("jaxlib")
    return None if version is None else version_numbers(version)


def deterministic_ops_flag() -> str:
    """The XLA flag for `xla_deterministic_ops` on the installed jaxlib."""
    version = jaxlib_version()
    if version is not None and version < EXCLUDE_NONDETERMINISTIC_SINCE:
        return DETERMINISTIC_OPS_FLAG
    return EXCLUDE_NONDETERMINISTIC_FLAG


def mode_flags(mode: Mode) -> list[str]:
    """The XLA flags `mode` turns on, in knob order."""
    flags = []
    if mode.is_on("xla_deterministic_ops"):
        flags.append(deterministic_ops_flag())
    if mode.is_on("xla_autotune_off"):
        flags.append(AUTOTUNE_OFF_FLAG)
    return flags


def mode_environment(mode: Mode) -> dict[str, str]:
    """Environment variables `mode` needs before JAX starts its backend (empty when none)."""
    env: dict[str, str] = {}
    if mode.is_on("cublas_workspace"):
        env["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    flags = mode_flags(mode)
    if flags:
        env["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()
    return env


def apply_jax_mode(mode: Mode) -> dict[str, object]:
    """Record the mode's JAX knobs as this process started with them (nothing is set here)."""
    started = os.environ.get("XLA_FLAGS", "").split()
    applied: dict[str, object] = {}
    for flag in mode_flags(mode):
        name = flag.removeprefix("--").partition("=")[0]
        applied[name] = flag.partition("=")[2] if flag in started else "not in XLA_FLAGS"
    if mode_flags(mode):
        applied["XLA_FLAGS"] = os.environ.get("XLA_FLAGS")
    if "cublas_workspace" in mode.knobs:
        applied["CUBLAS_WORKSPACE_CONFIG"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    return applied
