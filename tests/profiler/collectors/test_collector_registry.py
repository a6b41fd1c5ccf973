"""The collector registry: entry points (built-ins and plugins), broken plugins, safe file names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

from nnr_profile.core.errors import UsageError
from nnr_profile.core.modes import MODES
from nnr_profile.core.specs import TrialSpec
from nnr_profile.profiler.collectors import base
from nnr_profile.profiler.collectors.base import (
    Collector,
    artifact_base,
    collector_descriptions,
    get_collector,
    load_collectors,
)

PLUGIN = '''
from nnr_profile.profiler.collectors.base import Collector


class ToyCollector(Collector):
    """Counts nothing."""

    name = "toy"
    description = "a plugin collector from an entry point"
'''


def write_plugin(folder: Path) -> Path:
    """A plugin distribution on `folder`: one good collector and one that cannot import."""
    (folder / "nnr_toy_collector.py").write_text(PLUGIN)
    (folder / "nnr_broken_collector.py").write_text("raise ImportError('needs libfoo')\n")
    info = folder / "nnr_toy_collector-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnr-toy-collector\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[nnr_profile.collectors]\n"
        "toy = nnr_toy_collector:ToyCollector\n"
        "broken = nnr_broken_collector:Broken\n"
        "misnamed = nnr_toy_collector:ToyCollector\n"
    )
    return folder


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry as a new process would start it."""
    monkeypatch.setattr(base, "COLLECTORS", {})
    monkeypatch.setattr(base, "BROKEN", {})
    monkeypatch.setattr(base, "_loaded", False)


@pytest.mark.usefixtures("fresh_registry")
def test_builtins_come_from_the_entry_point_group() -> None:
    found = load_collectors()
    assert set(found) >= {"timing", "torch-profiler", "tf-profiler", "nsys", "nvprof"}
    assert found["timing"] is Collector
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
