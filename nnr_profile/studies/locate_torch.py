"""PyTorch hooks for `verify --locate`: a hash of every module's tensors, in execution order.

Per iteration the recorder writes one line per tensor: each module's forward inputs and outputs
(forward pre-hooks and hooks), the gradient w.r.t. each module output and input (tensor hooks
registered in those hooks), each parameter's gradient (post-accumulate-grad hooks) and each
parameter and buffer after the optimizer step (an optimizer step post-hook); the initial weights
and the batch come first. Module full backward hooks are not used: they wrap outputs in a view
that in-place code after the module (ResNet's ``out += identity``, ``ReLU(inplace=True)``)
is forbidden to modify, while tensor hooks see the gradient w.r.t. the value before such an
in-place change, as PyTorch documents.

Warnings PyTorch raises for ops without a deterministic implementation (``warn_only=True``)
are attributed to the module running when they arrive (the innermost forward; in backward, the
module whose gradient arrived; PyTorch may deliver backward warnings only when backward ends,
and those count for the whole model).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from nnr_profile.studies.locate_stream import Captured, Record, StreamWriter, digest_bytes, parent

ROOT = "model"
LOSS = "loss"


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """The tensors in a module's arguments or output (tuples, lists, dicts, ModelOutputs)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def tensor_digest(tensor: torch.Tensor) -> str:
    """CRC-32 of the tensor's raw bytes, on the host, as 8 hex digits (see `digest_bytes`)."""
    return digest_bytes(
        tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()
    )


def tensor_array(tensor: torch.Tensor) -> np.ndarray:
    """The tensor on the host as a NumPy array (bfloat16 and half widened to float32)."""
    value = tensor.detach().to("cpu")
    if value.dtype in (torch.bfloat16, torch.float16):
        value = value.float()
    return value.numpy().copy()


class TorchRecorder:
    """Hooks on a `TorchSession`'s model, loss and optimizer that stream hashes to `writer`."""

    def __init__(self, session: Any, writer: StreamWriter, caught: list) -> None:
        self.session = session
        self.writer = writer
        self.caught = caught
        self.seen_warnings = 0
        self.iteration = 0
        self.stack: list[str] = []
        self.cache: dict[int, tuple[torch.Tensor, int, str]] = {}
        self.grads: dict[tuple[int, int], tuple[torch.Tensor, list]] = {}
        self.ops: dict[str, set[str]] = {}
        self.handles: list[Any] = []
        self.names = {id(m): name or ROOT for name, m in session.model.named_modules()}
        self.names[id(session.loss_fn)] = LOSS
        self.param_names = {
            id(p): name for name, p in session.model.named_parameters(remove_duplicate=True)
        }

    def install(self) -> TorchRecorder:
        """Register every hook; record the initial weights and the batch."""
        modules = [*self.session.model.modules(), self.session.loss_fn]
        for module in modules:
            self.handles.append(module.register_forward_pre_hook(self._forward_pre))
            self.handles.append(module.register_forward_hook(self._forward))
        for param in self.session.model.parameters():
            if param.requires_grad and id(param) in self.param_names:
                self.handles.append(param.register_post_accumulate_grad_hook(self._param_grad))
        self.handles.append(self.session.optimizer.register_step_post_hook(self._step))
        for name, tensor in sorted(self.session.model.state_dict().items()):
            self._emit("init", *_split(name), tensor)
        self._emit("data", "batch", "inputs", self.session.inputs)
        self._emit("data", "batch", "targets", self.session.targets)
        self.writer.flush()
        return self

    def remove(self) -> None:
        """Remove every hook."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def module_ops(self) -> dict[str, list[str]]:
        """Module -> op names PyTorch warned about while it ran (after attributing the rest)."""
        self._attribute(ROOT)
        return {name: sorted(ops) for name, ops in self.ops.items()}

    def _attribute(self, module: str) -> None:
        from nnr_profile.studies.verify import ops_from_warnings

        fresh = self.caught[self.seen_warnings :]
        self.seen_warnings = len(self.caught)
        ops = ops_from_warnings([str(w.message) for w in fresh])
        if ops:
            self.ops.setdefault(module, set()).update(ops)

    def _digest(self, tensor: torch.Tensor) -> str:
        if self.writer.capturing:
            return ""
        version = tensor._version
        hit = self.cache.get(id(tensor))
        if hit is not None and hit[0] is tensor and hit[1] == version:
            return hit[2]
        digest = tensor_digest(tensor)
        self.cache[id(tensor)] = (tensor, version, digest)
        return digest

    def _emit(self, phase: str, module: str, slot: str, tensor: torch.Tensor) -> None:
        record = Record(
            self.iteration,
            phase,
            module,
            slot,
            self._digest(tensor),
            "x".join(str(d) for d in tensor.shape),
            str(tensor.dtype).removeprefix("torch."),
        )
        self.writer.write(record, lambda: tensor_array(tensor))

    def _forward_pre(self, module: Any, args: Any) -> None:
        name = self.names.get(id(module), type(module).__name__)
        if module is self.session.model:
            self.cache.clear()
            self.grads.clear()
        self._attribute(self.stack[-1] if self.stack else ROOT)
        self.stack.append(name)
        for index, tensor in enumerate(_tensors(args)):
            self._emit("forward_input", name, f"input{index}", tensor)
            self._watch(tensor, ("backward_input", name, f"input{index}"))

    def _forward(self, module: Any, args: Any, output: Any) -> None:
        name = self.stack.pop() if self.stack else self.names.get(id(module), "?")
        self._attribute(name)
        for index, tensor in enumerate(_tensors(output)):
            self._emit("forward_output", name, f"output{index}", tensor)
            self._watch(tensor, ("backward_output", name, f"output{index}"))
        if module is self.session.model or module is self.session.loss_fn:
            self.writer.flush()

    def _watch(self, tensor: torch.Tensor, label: tuple[str, str, str]) -> None:
        """One gradient hook per tensor value, however many modules produce or consume it."""
        if not tensor.requires_grad:
            return
        key = (id(tensor), tensor._version)
        entry = self.grads.get(key)
        if entry is not None and entry[0] is tensor:
            entry[1].append(label)
            return
        labels = [label]
        self.grads[key] = (tensor, labels)
        tensor.register_hook(lambda grad: self._grad(grad, labels))

    def _grad(self, grad: torch.Tensor, labels: list[tuple[str, str, str]]) -> None:
        """The gradient w.r.t. one tensor: its consumers' input grads, then producers' outputs."""
        consumers = [label for label in labels if label[0] == "backward_input"]
        producers = [label for label in labels if label[0] == "backward_output"]
        self._attribute(consumers[0][1] if consumers else parent(producers[0][1]))
        for phase, module, slot in [*consumers, *producers]:
            self._emit(phase, module, slot, grad)

    def _param_grad(self, param: torch.Tensor) -> None:
        module, slot = _split(self.param_names[id(param)])
        self._attribute(module)
        self._emit("weight_grad", module, slot, param.grad)

    def _step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._attribute(ROOT)
        self.cache.clear()
        for name, tensor in sorted(self.session.model.state_dict().items()):
            self._emit("update", *_split(name), tensor)
        self.writer.flush()
        self.iteration += 1


def _split(name: str) -> tuple[str, str]:
    """'layer1.0.conv1.weight' -> ('layer1.0.conv1', 'weight'); a top-level name -> model."""
    module, _, slot = name.rpartition(".")
    return module or ROOT, slot


def run_recorded(session: Any, steps: int, writer: StreamWriter) -> tuple[list, dict, Any]:
    """Train `steps` iterations with the recorder on: (loss handles, module ops, captured).

    `captured` is the tensor of the writer's capture record (training stops there), else None.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recorder = TorchRecorder(session, writer, caught)
        handles: list[Any] = []
        try:
            recorder.install()
            for _ in range(steps):
                handles.append(session.step())
        except Captured as done:
            return handles, recorder.module_ops(), done.array
        finally:
            recorder.remove()
        session.sync()
        return handles, recorder.module_ops(), None
