"""The collector registry: entry points (built-ins and plugins), broken plugins, safe file names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, plugin_distribution

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.registry import Registry
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.collectors import base
from nnr_profile.profiler.collectors.base import (
    artifact_base,
    collector_descriptions,
    get_collector,
    load_collectors,
)
from nnr_profile.profiler.collectors.timing import TimingCollector

PLUGIN = '''
from nnr_profile.profiler.collectors.base import Collector


class ToyCollector(Collector):
    """Counts nothing."""

    name = "toy"
    description = "a plugin collector from an entry point"
'''


def write_plugin(folder: Path) -> Path:
    """A plugin distribution on `folder`: one good collector and one that cannot import."""
    modules = {
        "nnr_toy_collector": PLUGIN,
        "nnr_broken_collector": "raise ImportError('needs libfoo')\n",
    }
    return plugin_distribution(
        folder,
        "nnr-toy-collector",
        modules,
        "[nnr_profile.collectors]\n"
        "toy = nnr_toy_collector:ToyCollector\n"
        "broken = nnr_broken_collector:Broken\n"
        "misnamed = nnr_toy_collector:ToyCollector\n",
    )


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry as a new process would start it."""
    fresh = Registry("collector", group=base.ENTRY_POINT_GROUP, check=base.collector_problem)
    monkeypatch.setattr(base, "COLLECTORS", fresh)


@pytest.mark.usefixtures("fresh_registry")
def test_builtins_come_from_the_entry_point_group() -> None:
    found = load_collectors()
    assert set(found) >= {"timing", "torch-profiler", "tf-profiler", "nsys", "nvprof"}
    assert found["timing"] is TimingCollector
    assert next(iter(collector_descriptions())) == "timing"


@pytest.mark.usefixtures("fresh_registry")
def test_plugin_collectors_load_and_broken_ones_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path)))
    assert get_collector("toy").description == "a plugin collector from an entry point"
    assert "nsys" in load_collectors()
    with pytest.raises(UsageError, match=r"'broken' cannot be used: .*needs libfoo"):
        get_collector("broken")
    with pytest.raises(UsageError, match=r"'misnamed' cannot be used: .*named 'misnamed'"):
        get_collector("misnamed")


def test_cli_help_lists_the_registry(tmp_path: Path) -> None:
    env = cli_env()
    env["PYTHONPATH"] = str(write_plugin(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "nnr_profile.cli", "run", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "toy: a plugin collector from an entry point" in text
    assert "torch-profiler: PyTorch profiler" in text
    assert "Not loadable: broken" in text


@pytest.mark.parametrize("workload", ["../../x", "/etc/passwd", "..", "a/../../b\n"])
def test_artifact_names_stay_in_their_folder(tmp_path: Path, workload: str) -> None:
    spec = TrialSpec("torch", workload, MODES["default"], collector="torch-profiler")
    folder = tmp_path / "traces"
    path = artifact_base(spec, folder)
    assert path.parent == folder
    assert path.resolve().parent == folder.resolve()
    assert "/" not in path.name and "\n" not in path.name
    assert not path.name.startswith(".")
