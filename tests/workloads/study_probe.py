"""Build the study's models and ours in TensorFlow, in a child process (TF and torch apart).

`python tests/workloads/study_probe.py [applications [NAME ...]]` prints one JSON object: for
each case, the study's layer sequence (kind, key settings, output shape, parameters) and ours,
their parameter counts, and our TF description (parameters, MACs) of every twin. With
`applications`, the keras.applications models of overhead_test.py (those NAMEs) instead.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from typing import Any

from study_reference import common, overhead_model_names, script_function

from nnr_profile.workloads.describe import describe_one, keras_macs
from nnr_profile.workloads.registry import BuildContext, get_workload

SETTINGS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "use_bias",
    "groups",
    "dilation_rate",
    "depth_multiplier",
    "units",
    "activation",
    "momentum",
    "epsilon",
    "center",
    "scale",
    "pool_size",
)
"""The layer settings a layer sequence compares (besides kind, output shape, parameters)."""

KERNELS = (1, 3, 5, 7)
TWINS: list[tuple[str, dict[str, Any], int | None]] = [
    ("smallcnn", {}, None),
    ("smallcnn", {"bn": True}, None),
    *[("mediumcnn", {"kernel": k}, None) for k in KERNELS],
    *[(f"mediumcnn_{k}x{k}", {}, None) for k in KERNELS],
    ("resnet18_cifar", {}, None),
    ("resnet18_cifar", {"classes": 100}, None),
    ("resnet18_celeba", {}, None),
    ("resnet18_imagenet", {}, None),
    ("lenet", {}, None),
    ("mlp", {"norm": "batch"}, None),
    ("mlp", {"norm": "layer"}, None),
    ("embedding_lm", {"d_model": 32, "heads": 4, "layers": 1}, None),
]
"""Workloads with a twin in each framework: (name, arguments, image size)."""


def study_models() -> list[tuple[str, dict[str, Any], Any]]:
    """(our name, our arguments, a builder of the study's model) for every model it defines."""
    resnet = common("resnet").ResNet18
    get_model = script_function("overhead_test", "get_model", MediumCNN=common("cnns").MediumCNN)

    def smallcnn(bn: bool) -> Any:
        args = Namespace(bn=bn, deterministic_init=False)
        return lambda: script_function("smallcnn", "Model", args=args)()

    return [
        ("smallcnn", {}, smallcnn(False)),
        ("smallcnn", {"bn": True}, smallcnn(True)),
        ("resnet18_cifar", {}, lambda: resnet(10, (32, 32, 3), None, 0.0)),
        ("resnet18_cifar", {"classes": 100}, lambda: resnet(100, (32, 32, 3), None, 0.0)),
        (
            "resnet18_celeba",
            {},
            lambda: resnet(40, (128, 128, 3), None, 0, activation="sigmoid"),
        ),
        *[(f"MediumCNN {k}*{k}", {}, lambda k=k: get_model(f"MediumCNN {k}*{k}")) for k in KERNELS],
        *[
            ("mediumcnn", {"kernel": k}, lambda k=k: get_model(f"MediumCNN {k}*{k}"))
            for k in KERNELS
        ],
    ]


def application_models(only: list[str]) -> list[tuple[str, dict[str, Any], Any]]:
    """overhead_test.py's keras.applications models (those named in `only`, when given), built
    as it builds them (224x224)."""
    get_model = script_function("overhead_test", "get_model", MediumCNN=None)
    names = [n for n in overhead_model_names() if not n.startswith("MediumCNN")]
    names = [n for n in names if n in only] if only else names
    return [(name, {}, lambda name=name: get_model(name)) for name in names]


def signature(model: Any) -> list[list[Any]]:
    """The model's operations in order: [kind, settings, output shape, parameters]."""
    rows = []
    for op in getattr(model, "operations", None) or model.layers:
        kind = type(op).__name__
        if kind == "InputLayer":
            continue
        settings: dict[str, Any] = {}
        if kind == "Activation":
            kind = op.activation.__name__
        elif kind.lower() == "relu":
            kind = "relu"
        elif kind.lower() == "add":
            kind = "add"
        elif hasattr(op, "get_config"):
            config = op.get_config()
            settings = {k: config[k] for k in SETTINGS if k in config}
        params = op.count_params() if hasattr(op, "count_params") else 0
        rows.append([kind, settings, [d for d in op.output.shape[1:]], int(params)])
    return rows


def counts(model: Any) -> dict[str, int]:
    """Trainable and non-trainable parameters, and forward MACs of one example."""
    return {
        "trainable": sum(int(v.numpy().size) for v in model.trainable_weights),
        "non_trainable": sum(int(v.numpy().size) for v in model.non_trainable_weights),
        "macs": sum(keras_macs(layer) for layer in model.layers),
        "input_shape": list(model.input_shape[1:]),
    }


def ours(name: str, args: dict[str, Any], side: int | None) -> Any:
    """Our TF model of workload `name` (any spelling) with `args`."""
    workload = get_workload("tf", name)
    resolved = workload.validate(args, side)
    shape = workload.shape_for(side)
    return workload.builder(
        BuildContext(resolved, "default", shape, workload.classes_for(resolved))
    )


def compare(cases: list[tuple[str, dict[str, Any], Any]], side: int | None) -> list[dict]:
    """For each case: the study's and our signature and counts."""
    import keras

    out = []
    for name, args, build in cases:
        keras.backend.clear_session()
        study = build()
        keras.backend.clear_session()
        mine = ours(name, args, side)
        out.append(
            {
                "name": name,
                "args": args,
                "study": {"signature": signature(study), **counts(study)},
                "ours": {"signature": signature(mine), **counts(mine)},
            }
        )
    return out


def main(argv: list[str]) -> int:
    """Print the comparison (and, without `applications`, our TF twins' descriptions)."""
    if argv[:1] == ["applications"]:
        print(json.dumps({"applications": compare(application_models(argv[1:]), 224)}))
        return 0
    twins = []
    for name, args, side in TWINS:
        d = describe_one(name, "tf", side, args)
        twins.append(
            {
                "name": name,
                "args": args,
                "trainable": d.trainable_params,
                "non_trainable": d.non_trainable_params,
                "macs": d.macs_per_example,
                "layers": len(d.layers),
            }
        )
    print(json.dumps({"models": compare(study_models(), None), "twins": twins}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
