"""The launcher registry and options: built-ins by module name, plugins by entry point, options
from the config fields, and an option refused by a launcher that does not take it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, plugin_distribution

from nnr_profile.core.errors import ParameterError
from nnr_profile.profiler.runner.launchers import LAUNCHER_MODULES
from nnr_profile.profiler.runner.launchers.base import load_launchers, make_launcher
from nnr_profile.profiler.runner.launchers.config import CONFIGS, launcher_options

PLUGIN = '''
from dataclasses import dataclass

from nnr_profile.profiler.runner.launchers.local import LocalLauncher


@dataclass(frozen=True)
class HereConfig:
    gpu: str = "all"
    greeting: str | None = None


class HereLauncher(LocalLauncher):
    """A plugin launcher from an entry point."""

    name = "here"
    config_class = HereConfig
'''


def test_options_come_from_the_config_fields() -> None:
    described = {option.flag: option for option in launcher_options()}
    assert list(described) == [
        "--trial-start",
        "--results-dir",
        "--no-wait",
        "--partition",
        "--constraint",
        "--gpus-per-node",
        "--account",
        "--qos",
        "--time",
        "--mem",
        "--task-python",
    ]
    assert described["--results-dir"].launchers == ("slurm", "submitit-local")
    assert described["--time"].name == "time_limit" and described["--time"].metavar == "TIME"
    assert (described["--no-wait"].type, described["--no-wait"].default) == (bool, False)
    assert described["--gpus-per-node"].type is int
    assert described["--trial-start"].launchers == ("local",)
    assert described["--trial-start"].default == "warm"


def test_each_built_in_config_is_its_launchers() -> None:
    launchers = load_launchers()
    assert list(launchers) == list(LAUNCHER_MODULES) == list(CONFIGS)
    assert all(cls.config_class is CONFIGS[name] for name, cls in launchers.items())


def test_an_option_the_launcher_does_not_take_is_refused() -> None:
    with pytest.raises(ParameterError, match="partition only applies to launcher slurm, not loc"):
        make_launcher("local", gpu="all", partition="gpu")
    with pytest.raises(ParameterError, match=r"no_wait only applies to .*slurm or submitit-local"):
        make_launcher("local", no_wait=True)
    config = make_launcher("slurm", gpu="all", partition="gpu", time_limit="90").config
    assert (config.partition, config.time_limit, config.no_wait) == ("gpu", "90", False)


def test_listing_launchers_and_their_options_imports_no_launcher() -> None:
    code = (
        "import sys\n"
        "from nnr_profile.profiler.runner.launchers import LAUNCHERS\n"
        "from nnr_profile.profiler.runner.launchers.config import launcher_options\n"
        "launcher_options(); print(LAUNCHERS.names())\n"
        "print(sorted(m for m in sys.modules if m.startswith('nnr_profile.profiler.runner.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=cli_env()
    ).stdout.splitlines()
    assert out == [
        "['local', 'slurm', 'submitit-local']",
        "['nnr_profile.profiler.runner.launchers', 'nnr_profile.profiler.runner.launchers.config']",
    ]


def test_plugin_launchers_come_from_their_entry_point_group(tmp_path: Path) -> None:
    plugin_distribution(
        tmp_path,
        "nnr-here-launcher",
        {"nnr_here_launcher": PLUGIN},
        "[nnr_profile.launchers]\n"
        "here = nnr_here_launcher:HereLauncher\n"
        "gone = nnr_gone_launcher:GoneLauncher\n",
    )
    code = (
        "from nnr_profile.core.errors import UsageError\n"
        "from nnr_profile.profiler.runner.launchers.base import LAUNCHERS, make_launcher\n"
        "print(LAUNCHERS.names())\n"
        "print(make_launcher('here', gpu='cpu', greeting='hi').config)\n"
        "try:\n    make_launcher('gone')\nexcept UsageError as exc:\n    print(exc)\n"
    )
    env = cli_env()
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()
    assert out[0] == "['local', 'slurm', 'submitit-local', 'here', 'gone']"
    assert out[1] == "HereConfig(gpu='cpu', greeting='hi')"
    assert out[2].startswith("launcher plugin 'gone' cannot be used: nnr_gone_launcher:GoneLaunch")
    assert "ModuleNotFoundError" in out[2]
