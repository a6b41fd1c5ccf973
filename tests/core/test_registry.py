"""The registry helper: decorators, lazy built-ins, an entry-point group, broken plugins named."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import plugin_distribution

from nnr_profile.core.errors import UsageError
from nnr_profile.core.registry import Registry, load_reference

GROUP = "nnr_profile_test.shapes"

SHAPES = """
from nnr_profile_test_registry import SHAPES

SHAPES.register("square", 4)
"""

HOME = """
from nnr_profile.core.registry import Registry

SHAPES = Registry(
    "shape",
    group="nnr_profile_test.shapes",
    check=lambda name, entry: None if isinstance(entry, int) else "is not a number",
)
"""


def write_distribution(folder: Path) -> Path:
    """A plugin distribution on `folder`: a module of entries, one object, and two broken ones."""
    modules = {
        "nnr_profile_test_registry": HOME,
        "nnr_test_shapes": SHAPES,
        "nnr_test_triangle": "SIDES = 3\nWORD = 'three'\n",
        "nnr_test_broken": "raise ImportError('needs libshape')\n",
    }
    return plugin_distribution(
        folder,
        "nnr-test-shapes",
        modules,
        f"[{GROUP}]\n"
        "shapes = nnr_test_shapes\n"
        "triangle = nnr_test_triangle:SIDES\n"
        "word = nnr_test_triangle:WORD\n"
        "broken = nnr_test_broken:SIDES\n"
        "broken_module = nnr_test_broken\n",
    )


@pytest.fixture
def shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry[int]:
    """The plugins' registry, as a new process would start it, with the distribution on the path."""
    monkeypatch.syspath_prepend(str(write_distribution(tmp_path)))
    for name in [m for m in sys.modules if m.startswith(("nnr_test_", "nnr_profile_test_"))]:
        monkeypatch.delitem(sys.modules, name)
    return load_reference("nnr_profile_test_registry:SHAPES")


def test_decorator_get_and_order() -> None:
    registry: Registry[object] = Registry("colour")

    @registry.register("red")
    def red() -> str:
        return "red"

    registry.register("blue", "blue")
    registry.register("red", red)
    assert registry.names() == ["red", "blue"] == list(registry)
    assert registry.get("red") is red and registry["blue"] == "blue"
    assert "green" not in registry and len(registry) == 2
    with pytest.raises(UsageError, match="unknown colour 'green': use red, blue"):
        registry.get("green")
    registry.unregister("red")
    assert registry.items() == [("blue", "blue")]


def test_lazy_built_ins_are_imported_only_when_asked_for(shapes: Registry[int]) -> None:
    registry: Registry[object] = Registry(
        "codec", check=lambda name, entry: None if callable(entry) else "is not callable"
    )
    registry.lazy("len", "builtins:len")
    registry.lazy("triangle", "nnr_test_triangle:SIDES")
    assert registry.names() == ["len", "triangle"]
    assert "nnr_test_triangle" not in sys.modules
    assert registry.get("len") is len
    with pytest.raises(TypeError, match=r"built-in codec 'triangle' .* is not callable"):
        registry.get("triangle")


def test_entry_points_load_and_broken_plugins_are_named(shapes: Registry[int]) -> None:
    assert "nnr_test_triangle" not in sys.modules
    assert shapes.names() == ["square", "triangle", "word", "broken"]
    assert "nnr_test_triangle" not in sys.modules
    assert shapes.get("square") == 4 and shapes.get("triangle") == 3
    with pytest.raises(UsageError, match=r"shape plugin 'word' cannot be used: .*not a number"):
        shapes.get("word")
    with pytest.raises(UsageError, match=r"'broken' cannot be used: .*needs libshape"):
        shapes.get("broken")
    assert shapes.values() == [4, 3]
    assert shapes.problems() == [
        "shape plugin 'broken_module': nnr_test_broken failed to import "
        "(ImportError: needs libshape)",
        "shape plugin 'word': nnr_test_triangle:WORD is not a number",
        "shape plugin 'broken': nnr_test_broken:SIDES failed to import "
        "(ImportError: needs libshape)",
    ]


def test_threads_that_load_at_once_all_see_every_entry(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "nnr_slow_holder.py").write_text(
        "from nnr_profile.core.registry import Registry\n"
        "THINGS = Registry('thing', modules=['nnr_slow_builtin'])\n"
    )
    (tmp_path / "nnr_slow_builtin.py").write_text(
        "import time\nfrom nnr_slow_holder import THINGS\n"
        "time.sleep(0.3)\nTHINGS.register('late', 7)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from nnr_slow_holder import THINGS

    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: THINGS.get("late"), range(4)))
    assert found == [7, 7, 7, 7]
