"""Shared test helpers: run the real CLI in a subprocess, optionally with the test plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).parent / "plugins"
TINY = [
    "--gpu",
    "cpu",
    "--batch-size",
    "2",
    "--image-size",
    "32",
    "--iterations",
    "3",
    "--warmup",
    "1",
    "--repeats",
    "1",
]


def cli_env(plugins: bool = False) -> dict[str, str]:
    """The environment for a CLI subprocess (optionally with the misbehaving-workload plugin)."""
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["OMP_NUM_THREADS"] = "1"  # one thread per trial: no spin-wait collapse on a busy 2-core box
    if plugins:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    return env


def run_cli(
    *args: str, plugins: bool = False, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `nnr-profile ARGS` as a user would; returns the completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", *args],
        capture_output=True,
        text=True,
        env=cli_env(plugins),
        timeout=timeout,
        cwd=cwd,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store path in a fresh temporary folder."""
    return tmp_path / "results" / "nnr.db"
