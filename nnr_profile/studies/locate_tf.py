"""TensorFlow for `verify --locate`: per-layer outputs and gradients of the tf.function step.

The recorded step is the session's step (GradientTape, loss, optimizer update) run through a
Keras model that returns every layer's output besides the prediction, so one `tf.function`
call gives each layer's output, the gradient of the loss w.r.t. each layer's output and
variables, and the variables after the update. They are hashed in a fixed order that follows
the data: per iteration the forward outputs in layer order, the loss; then, layers in reverse,
the gradient w.r.t. the layer's output (named as the input gradient of the one layer that
consumes it, when there is one) and the gradients of its variables; then every weight after
the optimizer step. TensorFlow raises for ops without a deterministic implementation instead
of warning, so no ops are attributed per layer.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nnr_profile.studies.locate_stream import Captured, Record, StreamWriter, digest_bytes
from nnr_profile.workloads.tf.adapter import op_error

LOSS = "loss"


def _layers(model: keras.Model) -> list[Any]:
    """Layers with exactly one output tensor, in the model's order (input layers left out)."""
    chosen = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):  # shared layers and layers never called
            continue
        if isinstance(output, keras.KerasTensor):
            chosen.append(layer)
    return chosen


def _consumers(layers: list[Any]) -> dict[str, list[tuple[str, int]]]:
    """Layer name -> (consumer layer, input index) for each layer its output feeds."""
    names = {id(layer): layer.name for layer in layers}
    found: dict[str, list[tuple[str, int]]] = {}
    for layer in layers:
        for node in getattr(layer, "_inbound_nodes", []):
            for index, parent in enumerate(getattr(node, "parent_nodes", [])):
                producer = names.get(id(getattr(parent, "operation", None)))
                if producer is not None:
                    found.setdefault(producer, []).append((layer.name, index))
    return found


def _owners(model: keras.Model, layers: list[Any]) -> dict[int, tuple[str, str]]:
    """id(variable) -> (layer name, variable name) for every weight of the model."""
    owners: dict[int, tuple[str, str]] = {}
    for layer in layers:
        for variable in layer.weights:
            owners.setdefault(id(variable), (layer.name, variable.name))
    for variable in model.weights:
        owners.setdefault(id(variable), ("model", variable.name))
    return owners


class TfRecorder:
    """A recorded train step for a `TfSession`, and the writer of its hash stream."""

    def __init__(self, session: Any, writer: StreamWriter) -> None:
        self.session = session
        self.writer = writer
        model = session.model
        self.layers = _layers(model)
        prediction = model.outputs[0]
        outputs = [layer.output for layer in self.layers]
        self.prediction_index = next(
            (i for i, tensor in enumerate(outputs) if tensor is prediction), None
        )
        if self.prediction_index is None:
            outputs.append(prediction)
            self.prediction_index = len(outputs) - 1
        self.extractor = keras.Model(model.inputs, outputs)
        self.consumers = _consumers(self.layers)
        self.owners = _owners(model, self.layers)
        self.iteration = 0
        self._step = tf.function(self._step_body)

    def _step_body(self, inputs: tf.Tensor, targets: tf.Tensor) -> Any:
        session = self.session
        variables = session.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.extractor(inputs, training=True)
            loss = session.loss_fn(targets, outputs[self.prediction_index])
        grads = tape.gradient(loss, [*outputs, *variables])
        session.optimizer.apply(grads[len(outputs) :], variables)
        after = [tf.identity(v) for v in session.model.weights]
        return loss, outputs, grads[: len(outputs)], grads[len(outputs) :], after

    def _emit(self, phase: str, module: str, slot: str, value: Any) -> None:
        array = np.ascontiguousarray(np.asarray(value))
        digest = "" if self.writer.capturing else digest_bytes(array.reshape(-1).view(np.uint8))
        shape = "x".join(str(d) for d in array.shape)
        record = Record(self.iteration, phase, module, slot, digest, shape, str(array.dtype))
        self.writer.write(record, lambda: array.copy())

    def start(self) -> None:
        """Record the initial weights and the batch."""
        for variable in self.session.model.weights:
            layer, name = self.owners[id(variable)]
            self._emit("init", layer, name, variable.numpy())
        self._emit("data", "batch", "inputs", self.session.inputs.numpy())
        self._emit("data", "batch", "targets", self.session.targets.numpy())
        self.writer.flush()

    def step(self) -> tf.Tensor:
        """One recorded iteration; returns the loss tensor."""
        session = self.session
        try:
            with tf.device(session.device):
                loss, outputs, output_grads, grads, after = self._step(
                    session.inputs, session.targets
                )
        except tf.errors.OpError as exc:
            raise op_error(exc) from exc
        for layer, output in zip(self.layers, outputs, strict=False):
            self._emit("forward_output", layer.name, "output0", output)
        self._emit("forward_output", LOSS, "output0", loss)
        variables = session.model.trainable_variables
        by_layer: dict[str, list[tuple[str, Any]]] = {}
        for variable, grad in zip(variables, grads, strict=True):
            layer, name = self.owners[id(variable)]
            if grad is not None:
                by_layer.setdefault(layer, []).append((name, grad))
        for index in reversed(range(len(self.layers))):
            layer = self.layers[index].name
            grad = output_grads[index]
            if grad is not None:
                self._emit(*self._grad_label(layer, index), grad)
            for name, value in by_layer.get(layer, []):
                self._emit("weight_grad", layer, name, value)
        for variable, value in zip(session.model.weights, after, strict=True):
            layer, name = self.owners[id(variable)]
            self._emit("update", layer, name, value)
        self.writer.flush()
        self.iteration += 1
        return loss

    def _grad_label(self, layer: str, index: int) -> tuple[str, str, str]:
        """Name the gradient w.r.t. a layer's output after the one layer that consumes it."""
        consumers = self.consumers.get(layer, [])
        if index == self.prediction_index and not consumers:
            return ("backward_input", LOSS, "input0")
        if len(consumers) == 1:
            consumer, slot = consumers[0]
            return ("backward_input", consumer, f"input{slot}")
        return ("backward_output", layer, "output0")


def run_recorded(session: Any, steps: int, writer: StreamWriter) -> tuple[list, dict, Any]:
    """Train `steps` recorded iterations: (loss handles, {} (no per-layer ops), captured)."""
    recorder = TfRecorder(session, writer)
    handles: list[Any] = []
    try:
        recorder.start()
        for _ in range(steps):
            handles.append(recorder.step())
    except Captured as done:
        return handles, {}, done.array
    return handles, {}, None
