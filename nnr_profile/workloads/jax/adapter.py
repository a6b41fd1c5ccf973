"""The JAX adapter: modes as XLA flags, PRNG-key seeds, a jitted flax/optax train step.

The step is one `jax.jit` call (forward, loss, gradients, optax update, BatchNorm statistics,
a fresh dropout key) on a state tuple that is donated and returned. A model that injects work
(`calibrate`) gets its amount as one more traced argument, so sizing it never retraces.
Timing: `PerfCounterTimer` with `sync()` at both edges of each iteration; `sync()` blocks until
the current state and the last loss are ready (`jax.block_until_ready`), so each iteration's
time is its own work.
XLA compiles the step on its first call, which the trial's warm-up absorbs.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnr_profile.core.environment import installed_version
from nnr_profile.core.errors import MissingDependencyError
from nnr_profile.core.modes import Mode
from nnr_profile.workloads.adapter import synthetic_batch
from nnr_profile.workloads.injection import find_injector, size_injection
from nnr_profile.workloads.jax.knobs import apply_jax_mode
from nnr_profile.workloads.recipes import KERAS_EPSILON, Recipe
from nnr_profile.workloads.registry import BuildContext, Workload
from nnr_profile.workloads.timing import IterationTimer, PerfCounterTimer

CUDA_INSTALL = "pip install 'jax[cuda12]'"
"""What gives JAX a GPU (the CPU wheels have none)."""


def jax_device(device: str) -> jax.Device:
    """The JAX device for `device` ("cuda": the process's one visible GPU, or "cpu")."""
    if device != "cuda":
        return jax.devices("cpu")[0]
    try:
        return jax.devices("gpu")[0]
    except RuntimeError as exc:
        raise MissingDependencyError(
            f"JAX sees no GPU ({exc}); install its CUDA plugin with: {CUDA_INSTALL}"
        ) from exc


def build_optimizer(recipe: Recipe, learning_rate: float) -> optax.GradientTransformation:
    """The recipe's optax optimizer at `learning_rate`, Keras's argument names mapped to optax's."""
    args = recipe.optimizer_args
    if recipe.optimizer == "sgd":
        return optax.sgd(learning_rate, args["momentum"] or None, bool(args["nesterov"]))
    if recipe.optimizer == "adam":
        return optax.adam(learning_rate, args["beta_1"], args["beta_2"], args["epsilon"])
    return optax.adadelta(learning_rate, args["rho"], args["epsilon"])


def build_loss(recipe: Recipe) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The recipe's mean loss on the model's logits (the output activation applied here, clipped
    at Keras's epsilon as PyTorch's twin does)."""
    clip = (KERAS_EPSILON, 1.0 - KERAS_EPSILON)

    def multi_label(logits: jax.Array, targets: jax.Array) -> jax.Array:
        if recipe.from_logits:
            return optax.sigmoid_binary_cross_entropy(logits, targets).mean(-1).mean()
        probs = jnp.clip(jax.nn.sigmoid(logits), *clip)
        per_label = -(targets * jnp.log(probs) + (1 - targets) * jnp.log(1 - probs))
        return per_label.mean(-1).mean()

    def single_label(logits: jax.Array, targets: jax.Array) -> jax.Array:
        if recipe.from_logits:
            return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
        probs = jnp.clip(jax.nn.softmax(logits, axis=-1), *clip)
        return -jnp.take_along_axis(jnp.log(probs), targets[:, None], axis=-1).mean()

    return multi_label if recipe.multi_label else single_label


def _variables(params: Any, batch_stats: Any) -> dict[str, Any]:
    return {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}


class JaxSession:
    """A flax model, its variables, an optax optimizer and one synthetic batch on one device."""

    def __init__(
        self,
        model: Any,
        variables: dict[str, Any],
        inputs: jax.Array,
        targets: jax.Array,
        key: jax.Array,
        device: jax.Device,
        recipe: Recipe | None = None,
    ) -> None:
        self.model = model
        self.inputs = inputs
        self.targets = targets
        self.recipe = recipe or Recipe()
        self.loss_fn = build_loss(self.recipe)
        self.optimizer = build_optimizer(self.recipe, self.recipe.learning_rate)
        params, batch_stats = variables["params"], variables.get("batch_stats", {})
        state = (params, batch_stats, self.optimizer.init(params), key)
        self.state = jax.device_put(state, device)  # all committed: one compilation, not two
        self.device = device
        self._last: jax.Array | None = None
        self._train_step = jax.jit(self._step_body, donate_argnums=0)
        self.injector = find_injector(getattr(model, "layers", ()))
        self._units: tuple[float, jax.Array] | None = None

    def _step_body(
        self, state: tuple, inputs: jax.Array, targets: jax.Array, units: jax.Array | None = None
    ) -> tuple:
        params, batch_stats, opt_state, key = state
        key, dropout = jax.random.split(key)
        injected = {} if units is None else {"units": units}

        def loss_of(p: Any) -> tuple[jax.Array, Any]:
            logits, updated = self.model.apply(
                _variables(p, batch_stats),
                inputs,
                train=True,
                rngs={"dropout": dropout},
                mutable=["batch_stats"],
                **injected,
            )
            return self.loss_fn(logits, targets), updated.get("batch_stats", batch_stats)

        (loss, batch_stats), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state, key), loss

    def step(self) -> jax.Array:
        """One iteration: one jitted call of forward, loss, gradients and optimizer update."""
        extra = () if self.injector is None else (self._units_array(),)
        self.state, self._last = self._train_step(self.state, self.inputs, self.targets, *extra)
        return self._last

    def _units_array(self) -> jax.Array:
        """The injector's units as a float32 scalar on the device, moved only when they change."""
        units = float(self.injector.units)
        if self._units is None or self._units[0] != units:
            self._units = (units, jax.device_put(np.float32(units), self.device))
        return self._units[1]

    def size_injected_work(self) -> dict[str, float]:
        """After warm-up: size the work the model injects (`calibrate`); {} when it injects none."""
        return {} if self.injector is None else size_injection(self, self.injector)

    def loss_value(self, handle: jax.Array) -> float:
        """The loss as a float."""
        return float(handle)

    def sync(self) -> None:
        """Wait until the current state and the last loss are computed."""
        jax.block_until_ready((self.state, self._last))

    def timer(self) -> IterationTimer:
        """perf_counter after `block_until_ready` at both edges of each iteration (CPU and GPU)."""
        return PerfCounterTimer(self.sync)

    def weights_hash(self) -> str:
        """SHA-256 over path, dtype, shape and raw bytes of every parameter and BatchNorm
        statistic, sorted by path."""
        params, batch_stats = self.state[:2]
        leaves = jax.tree_util.tree_flatten_with_path(_variables(params, batch_stats))[0]
        digest = hashlib.sha256()
        for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
            array = np.ascontiguousarray(np.asarray(leaf))
            digest.update(f"{jax.tree_util.keystr(path)}{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


class JaxAdapter:
    """JAX: record the XLA flags, seed with a PRNG key, prepare sessions, report versions."""

    name = "jax"

    def __init__(self) -> None:
        self._key: jax.Array | None = None

    def apply_mode(self, mode: Mode) -> dict[str, object]:
        """Record the mode's XLA flags, which the process started with (`fast` sets nothing)."""
        return apply_jax_mode(mode)

    def seed(self, seed: int) -> None:
        """Seed Python and NumPy, and keep `jax.random.key(seed)` for the model's keys."""
        random.seed(seed)
        np.random.seed(seed)
        self._key = jax.random.key(seed)

    def prepare(
        self,
        workload: Workload,
        args: dict,
        mode: Mode,
        batch_size: int,
        input_shape: tuple[int, ...],
        device: str,
    ) -> JaxSession:
        """Build the model, its variables and a synthetic batch on `device`."""
        target = jax_device(device)
        classes, recipe = workload.classes_for(args), workload.recipe
        inputs, targets = synthetic_batch(workload, classes, batch_size, input_shape)
        ctx = BuildContext(args, mode.name, input_shape, classes, mode.knobs)
        model = workload.builder(ctx)
        key = jax.random.key(0) if self._key is None else self._key
        init_key, step_key = jax.random.split(key)
        with jax.default_device(target):
            variables = model.init({"params": init_key}, jnp.asarray(inputs), train=False)
        inputs, targets = jax.device_put((inputs, targets), target)
        return JaxSession(model, dict(variables), inputs, targets, step_key, target, recipe)

    def environment(self) -> dict[str, Any]:
        """jax, jaxlib, flax and optax versions, the backend, its devices and the XLA flags."""
        devices = jax.devices()
        info: dict[str, Any] = {
            "framework": "jax",
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "devices": [str(d) for d in devices],
            "platform_version": devices[0].client.platform_version if devices else None,
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        for package in ("jaxlib", "flax", "optax"):
            info[package] = installed_version(package)
        gpus = [d for d in devices if d.platform == "gpu"]
        if gpus:
            info["jax_device_name"] = gpus[0].device_kind
            info["jax_capability"] = getattr(gpus[0], "compute_capability", None)
        return info


ADAPTER = JaxAdapter()
