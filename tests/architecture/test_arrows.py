"""The package's parts import only downward (docs/architecture.md): checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nnr_profile"

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "profiler": set(),
    "profiler.traces": {"core"},
    "workloads": {"core"},
    "profiler.collectors": {"profiler.traces", "core"},
    "store": {"core"},
    "profiler.runner": {"profiler.collectors", "workloads", "store", "core"},
    "studies": {"profiler.runner", "profiler.collectors", "workloads", "store", "reports", "core"},
    "reports": {"store", "core"},
    "api": {"reports", "store", "core"},
    "cli": {
        "studies",
        "profiler.runner",
        "profiler.collectors",
        "profiler.traces",
        "workloads",
        "store",
        "reports",
        "core",
    },
}
"""part -> the parts it imports (besides itself and the package root's __version__); exactly the
arrows of docs/architecture.md, each of them used."""

NO_FRAMEWORK = {"core", "profiler.traces", "store", "reports", "api"}
EXEMPT = {("profiler/traces/formats/tf_xplane.py", "tensorflow")}
"""TensorFlow's generated XPlane protobuf module is imported only when TF is already loaded."""
FRAMEWORKS = {"torch", "torchvision", "tensorflow", "keras", "jax", "jaxlib", "flax", "optax"}


def _part(path: Path) -> str:
    """The part a module belongs to: a top-level folder or module, or a folder of profiler/."""
    parts = path.relative_to(PACKAGE).parts
    if parts[0] == "profiler" and len(parts) > 2:
        return f"profiler.{parts[1]}"
    return parts[0].removesuffix(".py")


def _target(module: str) -> str | None:
    """The part an imported module name belongs to, or None outside the package."""
    names = module.split(".")
    if names[0] != "nnr_profile" or len(names) < 2 or names[1] == "__version__":
        return None
    if names[1] == "profiler" and len(names) > 2:
        return f"profiler.{names[2]}"
    return names[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module name `path` imports, at any depth (function-level imports included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module in ("nnr_profile", "nnr_profile.profiler"):
                found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
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
        target = _target(module)
        if target is not None:
            if target not in allowed:
                wrong.append(f"line {line}: {part} -> {target} ({module})")
        elif module.split(".")[0] in FRAMEWORKS and part in NO_FRAMEWORK:
            if (str(path.relative_to(PACKAGE)), module.split(".")[0]) in EXEMPT:
                continue
            wrong.append(f"line {line}: {part} imports the framework {module.split('.')[0]}")
    assert not wrong, "\n".join(wrong)


def test_every_allowed_arrow_is_used():
    used: dict[str, set[str]] = {part: set() for part in ALLOWED}
    for path in MODULES:
        part = _part(path)
        for _, module in _imports(path):
            target = _target(module)
            if target is not None and target != part:
                used[part].add(target)
    unused = {part: sorted(ALLOWED[part] - used[part]) for part in ALLOWED}
    assert not {p: u for p, u in unused.items() if u}, f"arrows nothing uses: {unused}"


def test_the_checker_sees_a_wrong_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from nnr_profile.profiler.runner.sweep import plan\n")
    assert _imports(bad) == [(2, "nnr_profile.profiler.runner.sweep")]
    assert _target("nnr_profile.profiler.runner.sweep") == "profiler.runner"
