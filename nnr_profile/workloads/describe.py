"""What a workload is: its layer table, parameters, multiply-accumulates, input and recipe.

`describe(model, framework, image_size, workload_args)` builds the workload's model (random
weights, nothing trained) and returns one `Description` per framework. Layer rows are what
Keras's `summary()` and torchsummary print: name, type, output shape, parameters, and the
forward multiply-accumulates (MACs) of one example. MACs count convolutions (grouped and
depthwise too), dense / linear layers and attention's matrix products; additions,
normalisation and activations are not counted. PyTorch's come from `torch.utils.flop_counter`
(FLOPs / 2, per module), TensorFlow's from each Keras layer's shapes, JAX's from each flax
module's shapes (`workloads/jax/describe.py`).

Non-trainable parameters are Keras's non-trainable weights and, in PyTorch, the floating-point
buffers (BatchNorm running mean and variance), so twins compare one for one.
With `framework="all"` each framework is described in a child process of its own, because
TensorFlow and PyTorch are kept out of one process (`tests/workloads/tf_probe.py`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from nnr_profile.core.errors import NnrError, UsageError
from nnr_profile.workloads.registry import (
    FRAMEWORKS,
    BuildContext,
    Workload,
    frameworks_for,
    get_workload,
)
from nnr_profile.workloads.selection import framework_choice


@dataclass(frozen=True)
class LayerRow:
    """One layer: name, type, output shape (batch excluded), parameters and MACs per example."""

    name: str
    kind: str
    output_shape: tuple[int | None, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class Description:
    """One workload in one framework, as built: layers, parameter counts, MACs, recipe."""

    framework: str
    workload: str
    layout: str
    input_shape: tuple[int, ...]
    num_classes: int
    workload_args: dict[str, Any]
    trainable_params: int
    non_trainable_params: int
    macs_per_example: int
    recipe: dict[str, Any]
    layers: list[LayerRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (what `describe --json` prints)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["layers"] = [
            {**asdict(row), "output_shape": list(row.output_shape)} for row in self.layers
        ]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Description:
        """The inverse of `to_dict`."""
        rows = [LayerRow(**{**r, "output_shape": tuple(r["output_shape"])}) for r in data["layers"]]
        return cls(**{**data, "input_shape": tuple(data["input_shape"]), "layers": rows})

    def render(self) -> str:
        """The layer table and totals as text, like Keras's summary()."""
        header = ("Layer", "Type", "Output shape", "Params", "MACs")
        body = [
            (r.name, r.kind, _shape(r.output_shape), f"{r.params:,}", f"{r.macs:,}")
            for r in self.layers
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
            right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(line(header))
        macs = f"{self.macs_per_example:,} ({self.macs_per_example / 1e9:.3g} G)"
        args = ", ".join(f"{k}={v}" for k, v in self.workload_args.items())
        out = [
            f"{self.workload} ({self.framework}, {self.layout} layout)"
            + (f" with {args}" if args else ""),
            rule,
            line(header),
            rule,
            *(line(row) for row in body),
            rule,
            f"input shape:           {_shape(self.input_shape)}",
            f"classes:               {self.num_classes}",
            f"trainable params:      {self.trainable_params:,}",
            f"non-trainable params:  {self.non_trainable_params:,}",
            f"MACs per example:      {macs}",
            f"recipe:                {self.recipe['summary']}",
            *(f"note: {note}" for note in self.notes),
        ]
        return "\n".join(out)


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if n is None else str(n) for n in shape) + ")"


RECIPE_OVERRIDES = ("learning_rate", "batch_size", "epochs")
"""The recipe fields a preset's options replace in what `describe` shows."""
DESCRIBED = ("torch", "tf", "jax")
"""The frameworks `describe` builds layer tables for (`all` leaves the others out)."""


def describe(
    model: str,
    framework: str = "torch",
    image_size: int | None = None,
    workload_args: Mapping[str, Any] | None = None,
    recipe_overrides: Mapping[str, Any] | None = None,
) -> list[Description]:
    """One `Description` per framework asked for (`torch`, `tf`, `jax` or `all`: each that has it).

    `recipe_overrides` (keys among `RECIPE_OVERRIDES`, e.g. a preset's learning rate) replace
    the workload's own values in the recipe shown. An unknown model, framework or argument
    raises an NnrError (one line for the CLI).
    """
    framework = framework_choice(framework)
    args = dict(workload_args or {})
    overrides = dict(recipe_overrides or {})
    if framework != "all":
        return [describe_one(model, framework, image_size, args, overrides)]
    chosen = [f for f in frameworks_for(model) if f in DESCRIBED]
    if not chosen:
        get_workload(FRAMEWORKS[0], model)  # raises the unknown-model error
    described = [_describe_in_child(model, f, image_size, args, overrides) for f in chosen]
    return _with_twin_notes(described)


def describe_one(
    model: str,
    framework: str,
    image_size: int | None,
    workload_args: Mapping[str, Any],
    recipe_overrides: Mapping[str, Any] | None = None,
) -> Description:
    """Build `model` for `framework` in this process and describe it."""
    from nnr_profile.workloads.adapter import require_framework

    if framework not in DESCRIBED:
        raise UsageError(f"describe does not support {framework} yet: use {', '.join(DESCRIBED)}")
    workload = get_workload(framework, model)
    args = workload.validate(dict(workload_args), image_size)
    require_framework(framework)
    shape = workload.shape_for(image_size)
    classes = workload.classes_for(args)
    ctx = BuildContext(args, "default", shape, classes)
    build = {"torch": _describe_torch, "tf": _describe_tf, "jax": _describe_jax}[framework]
    layers, trainable, frozen, macs = build(workload, ctx)
    overrides = {k: v for k, v in (recipe_overrides or {}).items() if v is not None}
    recipe = replace(workload.recipe, **overrides)
    return Description(
        framework=framework,
        workload=workload.name,
        layout=workload.layout,
        input_shape=tuple(shape),
        num_classes=classes,
        workload_args=args,
        trainable_params=trainable,
        non_trainable_params=frozen,
        macs_per_example=macs,
        recipe={**recipe.to_dict(), "summary": recipe.summary()},
        layers=layers,
    )


def _describe_in_child(
    model: str,
    framework: str,
    image_size: int | None,
    args: Mapping[str, Any],
    recipe_overrides: Mapping[str, Any],
) -> Description:
    request = json.dumps(
        {
            "model": model,
            "framework": framework,
            "image_size": image_size,
            "args": dict(args),
            "recipe": dict(recipe_overrides),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "nnr_profile.workloads.describe", request],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise NnrError(f"describing {model} for {framework} failed: {reason}")
    reply = json.loads(lines[-1])
    if "error" in reply:
        raise NnrError(reply["error"])
    return Description.from_dict(reply)


def _with_twin_notes(described: list[Description]) -> list[Description]:
    """Notes naming each twin's layout and counts where the layouts differ."""
    if len(described) < 2 or len({d.layout for d in described}) == 1:
        return described
    summary = "; ".join(
        f"{d.framework} ({d.layout}) {d.trainable_params:,} trainable, {d.macs_per_example:,} MACs"
        for d in described
    )
    note = f"the twins follow different layouts: {summary}"
    return [replace(d, notes=[*d.notes, note]) for d in described]


def _describe_torch(workload: Workload, ctx: BuildContext) -> tuple[list[LayerRow], int, int, int]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = workload.builder(ctx).eval()
    rows = _torch_rows(model)
    shapes: dict[str, tuple[int, ...]] = {}

    attention: dict[str, int] = {}

    def hook_for(name: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            if isinstance(module, torch.nn.MultiheadAttention) and name not in attention:
                attention[name] = _torch_attention_macs(module, inputs)
            tensor = getattr(output, "logits", output)
            if isinstance(tensor, tuple | list):
                tensor = tensor[0]
            if isinstance(tensor, torch.Tensor) and name not in shapes:
                shapes[name] = tuple(int(n) for n in tensor.shape[1:])

        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in rows]
    if workload.input_kind == "tokens":
        example = torch.zeros((1, *ctx.input_shape), dtype=torch.long)
    else:
        example = torch.zeros((1, *ctx.input_shape))
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder path is not counted
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for handle in handles:
            handle.remove()
    counts = counter.get_flop_counts()
    root = type(model).__name__

    def counted(name: str) -> int:
        return sum(counts.get(f"{root}.{name}", {}).values()) // 2

    called = [(name, module) for name, module in rows if name in shapes]
    called.sort(key=lambda item: list(shapes).index(item[0]))
    layers = [
        LayerRow(
            name,
            type(module).__name__,
            shapes[name],
            sum(p.numel() for p in module.parameters()) + _torch_state(module),
            attention[name] if name in attention else counted(name),
        )
        for name, module in called
    ]
    # the flop counter misses the CPU attention kernel: attention rows count their own MACs
    total = counter.get_total_flops() // 2 + sum(m - counted(n) for n, m in attention.items())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return layers, trainable, frozen + _torch_state(model), total


def _torch_attention_macs(module: Any, inputs: tuple[Any, ...]) -> int:
    """An nn.MultiheadAttention call: in-projections, the two attention products, out-projection."""
    query, key, value = (inputs + (inputs[0],) * 3)[:3] if len(inputs) < 3 else inputs[:3]
    seq = 1 if module.batch_first else 0
    q_len, k_len = int(query.shape[seq]), int(key.shape[seq])
    width = module.embed_dim
    projections = q_len * int(query.shape[-1]) * width
    projections += k_len * (int(key.shape[-1]) + int(value.shape[-1])) * width
    return projections + 2 * q_len * k_len * width + q_len * width * width


def _torch_state(module: Any) -> int:
    """Floating-point buffers (BatchNorm running statistics): Keras's non-trainable weights."""
    return sum(b.numel() for b in module.buffers() if b.is_floating_point())


def _torch_rows(model: Any) -> list[tuple[str, Any]]:
    """The modules a layer table lists: leaves, and modules holding parameters of their own."""
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, module: Any) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            own = any(True for _ in child.parameters(recurse=False))
            if own or not any(True for _ in child.children()):
                rows.append((path, child))
            else:
                walk(path, child)

    walk("", model)
    return rows


def _describe_jax(workload: Workload, ctx: BuildContext) -> tuple[list[LayerRow], int, int, int]:
    from nnr_profile.workloads.jax.describe import describe_jax

    return describe_jax(workload, ctx)


def _describe_tf(workload: Workload, ctx: BuildContext) -> tuple[list[LayerRow], int, int, int]:
    from nnr_profile.workloads.tf.adapter import configure_devices

    configure_devices()
    model = workload.builder(ctx)
    layers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        output = layer.output
        output = output[0] if isinstance(output, list | tuple) else output
        layers.append(
            LayerRow(
                layer.name,
                type(layer).__name__,
                tuple(None if n is None else int(n) for n in output.shape[1:]),
                int(layer.count_params()),
                keras_macs(layer),
            )
        )
    trainable = sum(int(math.prod(v.shape)) for v in model.trainable_weights)
    frozen = sum(int(math.prod(v.shape)) for v in model.non_trainable_weights)
    return layers, trainable, frozen, sum(row.macs for row in layers)


def keras_macs(layer: Any) -> int:
    """Forward multiply-accumulates of one example through a called Keras layer (0: none)."""
    kind = type(layer).__name__
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        out = _dims(layer.output)
        in_channels = int(layer.input.shape[-1])
        return math.prod(out) * in_channels // layer.groups * math.prod(layer.kernel_size)
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return math.prod(_dims(layer.output)) * math.prod(layer.kernel_size)
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        out = _dims(layer.output)
        spatial, filters = math.prod(out[:-1]), out[-1]
        depthwise = int(layer.input.shape[-1]) * layer.depth_multiplier
        return spatial * depthwise * (math.prod(layer.kernel_size) + filters)
    if kind == "Dense":
        return math.prod(_dims(layer.output)) * int(layer.input.shape[-1])
    if kind == "MultiHeadAttention":
        return _attention_macs(layer)
    return 0


def _dims(tensor: Any) -> list[int]:
    return [int(n) for n in tensor.shape[1:]]


def _attention_macs(layer: Any) -> int:
    """Query/key/value projections, the two attention products and the output projection."""
    heads, key_dim = layer.num_heads, layer.key_dim
    value_dim = layer.value_dim or key_dim
    inputs = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
    query = inputs[0].shape
    value = inputs[1].shape if len(inputs) > 1 else query
    key = inputs[2].shape if len(inputs) > 2 else value
    q_len, v_len = int(query[1]), int(value[1])
    out_width = int(layer.output.shape[-1])
    projections = heads * (
        q_len * int(query[-1]) * key_dim
        + v_len * int(key[-1]) * key_dim
        + v_len * int(value[-1]) * value_dim
    )
    products = q_len * v_len * heads * (key_dim + value_dim)
    return projections + products + q_len * heads * value_dim * out_width


def main(argv: list[str]) -> int:
    """Child-process entry point: describe one framework and print it as one JSON line."""
    request = json.loads(argv[0])
    try:
        described = describe_one(
            request["model"],
            request["framework"],
            request["image_size"],
            request["args"],
            request["recipe"],
        )
        print(json.dumps(described.to_dict(), default=str))
    except NnrError as exc:
        print(json.dumps({"error": str(exc)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
