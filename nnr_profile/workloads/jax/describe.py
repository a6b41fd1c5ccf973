"""`describe` for JAX: the layer table of a flax model, from shapes only.

The model is initialised under `jax.eval_shape` (nothing is computed) with every flax module's
`__call__` intercepted, which gives each called module its path (`layers_0`,
`layers_5/Conv_1`), type and output shape. The rows are the leaf modules and modules holding
parameters of their own, in call order, as for PyTorch. Plain functions in a model's layer list
(activations, pooling, reshapes) are no flax modules and get no row; they hold no parameters and
no MACs, so the totals are those of the twins. MACs follow `keras_macs`: `nn.Conv` (grouped too)
and `nn.Dense`, per example. Non-trainable parameters are flax's `batch_stats` (BatchNorm's
running mean and variance, Keras's non-trainable weights).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from nnr_profile.workloads.describe import LayerRow
from nnr_profile.workloads.registry import BuildContext, Workload


def _count(tree: Any) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def _subtree(variables: dict[str, Any], collection: str, path: tuple[str, ...]) -> Any:
    node = variables.get(collection, {})
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def flax_macs(module: Any, inputs: tuple[Any, ...], output: Any) -> int:
    """Forward multiply-accumulates of one example through a called flax module (0: none)."""
    out = [int(n) for n in output.shape[1:]]
    if isinstance(module, nn.Conv):
        in_channels = int(inputs[0].shape[-1])
        kernel = module.kernel_size
        kernel = (kernel,) if isinstance(kernel, int) else tuple(kernel)
        return math.prod(out) * in_channels // module.feature_group_count * math.prod(kernel)
    if isinstance(module, nn.Dense):
        return math.prod(out) * int(inputs[0].shape[-1])
    return 0


def describe_jax(workload: Workload, ctx: BuildContext) -> tuple[list[LayerRow], int, int, int]:
    """Layer rows, trainable and non-trainable parameters, and MACs of `workload`'s flax model."""
    model = workload.builder(ctx)
    example = np.zeros((1, *ctx.input_shape), np.float32)
    called: dict[tuple[str, ...], tuple[str, tuple[int, ...], int]] = {}

    def record(next_fun: Any, args: tuple, kwargs: dict, context: Any) -> Any:
        output = next_fun(*args, **kwargs)
        module = context.module
        path = tuple(module.scope.path) if module.scope is not None else ()
        if context.method_name == "__call__" and path and path not in called:
            shape = tuple(int(n) for n in getattr(output, "shape", ())[1:])
            called[path] = (type(module).__name__, shape, flax_macs(module, args, output))
        return output

    def init() -> Any:
        with nn.intercept_methods(record):
            return model.init({"params": jax.random.key(0)}, example, train=False)

    variables = dict(jax.eval_shape(init))
    paths = list(called)
    layers = []
    for path in paths:
        kind, shape, macs = called[path]
        params = _subtree(variables, "params", path)
        stats = _subtree(variables, "batch_stats", path)
        leaf = not any(other[: len(path)] == path and other != path for other in paths)
        own = isinstance(params, dict) and any(not isinstance(v, dict) for v in params.values())
        if leaf or own:
            layers.append(
                LayerRow("/".join(path), kind, shape, _count(params) + _count(stats), macs)
            )
    trainable = _count(variables.get("params", {}))
    frozen = _count(variables.get("batch_stats", {}))
    return layers, trainable, frozen, sum(row.macs for row in layers)
