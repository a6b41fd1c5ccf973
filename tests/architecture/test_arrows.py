"""The package's parts import only downward (docs/architecture.md): checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nnr_profile"

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "traces": {"core"},
    "workloads": {"core"},
    "collectors": {"traces", "core"},
    "store": {"traces", "core"},
    "runner": {"collectors", "workloads", "store", "traces", "core"},
    "studies": {"runner", "collectors", "workloads", "store", "reports", "traces", "core"},
    "reports": {"store", "traces", "core"},
    "api": {"reports", "store", "traces", "core"},
    "cli": {
        "api",
        "studies",
        "runner",
        "collectors",
        "workloads",
        "store",
        "traces",
        "reports",
        "core",
    },
}
"""part -> the parts it may import (besides itself and the package root's __version__)."""

NO_FRAMEWORK = {"core", "traces", "store", "reports", "api"}
EXEMPT = {("traces/formats/tf_xplane.py", "tensorflow")}
"""TensorFlow's generated XPlane protobuf module is imported only when TF is already loaded."""
FRAMEWORKS = {"torch", "torchvision", "tensorflow", "keras"}


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module name `path` imports, at any depth (function-level imports included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "nnr_profile":
                found.extend((node.lineno, f"nnr_profile.{a.name}") for a in node.names)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py")


def test_every_module_belongs_to_a_known_part():
    parts = {_part(p) for p in MODULES}
    unknown = parts - set(ALLOWED) - {"__main__"}
    assert not unknown, f"modules outside the documented parts: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downward(path):
    part = _part(path)
    allowed = ALLOWED[part] | {part}
    wrong = []
    for line, module in _imports(path):
        names = module.split(".")
        if names[0] == "nnr_profile" and len(names) > 1 and names[1] != "__version__":
            if names[1] not in allowed:
                wrong.append(f"line {line}: {part} -> {names[1]} ({module})")
        elif names[0] in FRAMEWORKS and part in NO_FRAMEWORK:
            if (str(path.relative_to(PACKAGE)), names[0]) in EXEMPT:
                continue
            wrong.append(f"line {line}: {part} imports the framework {names[0]}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from nnr_profile.runner.sweep import plan\n")
    assert _imports(bad) == [(2, "nnr_profile.runner.sweep")]
