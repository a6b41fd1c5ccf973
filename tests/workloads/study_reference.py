"""Load the study's own model definitions from ../shared/reference (never copied into the package).

The study ("Randomness in Neural Network Training: Characterizing the Impact of Tooling", MIT,
`NeuralNetworkRandomness/`) defines its models in `src/common/` (importable modules) and inside
its training scripts, which parse arguments and load data at import. `common(name)` imports a
module of `src/common/`; `script_function(script, name, **names)` takes one function out of a
training script (with the script's TensorFlow imports and constants, never its argparse,
tensorflow_datasets or training code). TF 2.4-era API is shimmed where TF 2.21 / Keras 3
lacks it. `skip_reason()` says why the
study's code cannot be built here (no ../shared, no TensorFlow), or None.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(
    os.environ.get(
        "NNR_STUDY_REFERENCE", ROOT.parent / "shared" / "reference" / "NeuralNetworkRandomness"
    )
)
SCRIPTS = REFERENCE / "src" / "training_script"
OVERHEAD_MODELS_SCRIPT = "overhead_test"


def skip_reason() -> str | None:
    """Why the study's models cannot be built here, or None."""
    if not (REFERENCE / "src" / "common" / "resnet.py").is_file():
        return f"the study's code is not at {REFERENCE} (../shared is absent)"
    if importlib.util.find_spec("tensorflow") is None:
        return "tensorflow is not installed"
    return None


def _shim() -> None:
    """What TF 2.21 / Keras 3 lacks of the TF 2.4 API the study's model code uses.

    `tf.keras.layers.experimental` (preprocessing layers) moved into `tf.keras.layers`; the
    study's model code needs nothing else (its data and mixed-precision code is never run).
    """
    import tensorflow as tf

    if not hasattr(tf.keras.layers, "experimental"):
        tf.keras.layers.experimental = types.SimpleNamespace(preprocessing=tf.keras.layers)


def common(name: str) -> types.ModuleType:
    """The study's `src/common/<name>.py`, imported under a private name."""
    _shim()
    key = f"nnr_study_reference_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, REFERENCE / "src" / "common" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def _is_tf_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return all(a.name.split(".")[0] in ("tensorflow", "keras", "numpy") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] in ("tensorflow", "keras")
    return False


def _is_constant(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.isupper()
        and isinstance(node.value, ast.Constant)
    )


def script_function(script: str, name: str, **names: Any) -> Any:
    """Function `name` of training script `script`, with its TF imports, constants and `names`.

    `names` fills what the function reads from the script's run (e.g. `args` with `bn`), and
    the study's relative imports (e.g. `MediumCNN`).
    """
    _shim()
    tree = ast.parse((SCRIPTS / f"{script}.py").read_text(encoding="utf-8"))
    keep = [
        node
        for node in tree.body
        if _is_tf_import(node)
        or _is_constant(node)
        or (isinstance(node, ast.FunctionDef) and node.name == name)
    ]
    namespace: dict[str, Any] = dict(names)
    exec(
        compile(ast.Module(keep, type_ignores=[]), str(SCRIPTS / f"{script}.py"), "exec"), namespace
    )
    return namespace[name]


def overhead_model_names() -> list[str]:
    """The model names overhead_test.py's get_model accepts, in its order."""
    tree = ast.parse((SCRIPTS / f"{OVERHEAD_MODELS_SCRIPT}.py").read_text(encoding="utf-8"))
    function = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_model"
    )
    found = [
        (node.lineno, node.comparators[0].value)
        for node in ast.walk(function)
        if isinstance(node, ast.Compare) and isinstance(node.comparators[0], ast.Constant)
    ]
    return [name for _, name in sorted(found)]
