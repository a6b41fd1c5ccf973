"""The PyTorch adapter: modes, seeds, synthetic batches on the device, one training step."""

from __future__ import annotations

import hashlib
import os
import random
from importlib import metadata
from typing import Any

import numpy as np
import torch
from torch import nn

from nnr_profile.core.modes import Mode
from nnr_profile.workloads.injection import find_injector, size_injection
from nnr_profile.workloads.recipes import KERAS_EPSILON, Recipe
from nnr_profile.workloads.registry import BuildContext, Workload
from nnr_profile.workloads.timing import CudaEventTimer, IterationTimer, PerfCounterTimer
from nnr_profile.workloads.torch.knobs import apply_torch_mode


def torch_device(device: str) -> torch.device:
    """The torch device for `device` ("cuda": the process's one visible GPU, or "cpu")."""
    return torch.device("cuda:0" if device == "cuda" else "cpu")


def build_optimizer(recipe: Recipe, params: Any, lr: float) -> torch.optim.Optimizer:
    """The recipe's optimizer at base rate `lr`, Keras's argument names mapped to torch's."""
    args = {k: v for k, v in recipe.optimizer_args.items() if v is not None}
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, **args)
    if recipe.optimizer == "adam":
        betas = (args.pop("beta_1", 0.9), args.pop("beta_2", 0.999))
        return torch.optim.Adam(params, lr=lr, betas=betas, **_torch_eps(args))
    return torch.optim.Adadelta(params, lr=lr, **_torch_eps(args))


def _torch_eps(args: dict[str, Any]) -> dict[str, Any]:
    return {("eps" if k == "epsilon" else k): v for k, v in args.items()}


class ProbabilityCrossEntropy(nn.Module):
    """Keras's categorical cross-entropy on softmax outputs: softmax, clip to [1e-7, 1-1e-7], NLL.

    Takes logits and class indices; the same arithmetic as a Keras model ending in softmax.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean (or summed) loss over the batch."""
        probs = torch.softmax(logits, dim=-1).clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON)
        return nn.functional.nll_loss(probs.log(), targets, reduction=self.reduction)


class ProbabilityBinaryCrossEntropy(nn.Module):
    """Keras's binary cross-entropy on sigmoid outputs (clipped), mean over labels per example."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean (or summed) per-example loss over the batch."""
        probs = torch.sigmoid(logits).clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON)
        targets = targets.to(probs.dtype)
        per_label = -(targets * probs.log() + (1 - targets) * (1 - probs).log())
        per_example = per_label.mean(-1)
        return per_example.sum() if self.reduction == "sum" else per_example.mean()


class _BinaryWithLogits(nn.Module):
    """Binary cross-entropy on logits, mean over labels per example (as Keras reduces)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean (or summed) per-example loss over the batch."""
        per_label = nn.functional.binary_cross_entropy_with_logits(
            logits, targets.to(logits.dtype), reduction="none"
        )
        per_example = per_label.mean(-1)
        return per_example.sum() if self.reduction == "sum" else per_example.mean()


def build_loss(recipe: Recipe, reduction: str = "mean") -> nn.Module:
    """The recipe's loss on the model's logits (the output activation applied here)."""
    if recipe.multi_label:
        return (_BinaryWithLogits if recipe.from_logits else ProbabilityBinaryCrossEntropy)(
            reduction
        )
    if recipe.from_logits:
        return nn.CrossEntropyLoss(reduction=reduction)
    return ProbabilityCrossEntropy(reduction)


class TorchSession:
    """A torch model, optimizer and one synthetic batch, all on one device."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        device: torch.device,
        recipe: Recipe | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.inputs = inputs
        self.targets = targets
        self.device = device
        self.recipe = recipe or Recipe()
        self.loss_fn = build_loss(self.recipe)

    def _loss(self, output: Any) -> torch.Tensor:
        aux = None
        if hasattr(output, "logits"):  # inception_v3 in training mode
            output, aux = output.logits, output.aux_logits
        if self.recipe.multi_label:
            return self.loss_fn(output, self.targets)
        loss = self.loss_fn(output.reshape(-1, output.shape[-1]), self.targets.reshape(-1))
        if aux is not None:
            loss = loss + 0.4 * self.loss_fn(aux, self.targets)
        return loss

    def step(self) -> torch.Tensor:
        """One iteration: zero grads, forward, loss, backward, optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(self.model(self.inputs))
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def size_injected_work(self) -> dict[str, float]:
        """After warm-up: size the work the model injects (`calibrate`); {} when it injects none."""
        injector = find_injector(self.model.modules())
        return {} if injector is None else size_injection(self, injector)

    def loss_value(self, handle: torch.Tensor) -> float:
        """The loss as a float."""
        return float(handle.item())

    def sync(self) -> None:
        """Wait for queued CUDA work (no-op on the CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timer(self) -> IterationTimer:
        """CUDA events on a GPU, perf_counter on the CPU."""
        if self.device.type == "cuda":
            return CudaEventTimer()
        return PerfCounterTimer(self.sync)

    def weights_hash(self) -> str:
        """SHA-256 over names and raw bytes of all parameters and buffers, sorted by name."""
        digest = hashlib.sha256()
        state = self.model.state_dict()
        for name in sorted(state):
            tensor = state[name].detach().to("cpu").contiguous().reshape(-1)
            digest.update(name.encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


class TorchAdapter:
    """PyTorch: apply modes, seed, prepare sessions, report versions."""

    name = "torch"

    def apply_mode(self, mode: Mode) -> dict[str, object]:
        """Apply the mode's PyTorch knobs."""
        return apply_torch_mode(mode)

    def seed(self, seed: int) -> None:
        """Seed Python, NumPy and torch (all devices)."""
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def prepare(
        self,
        workload: Workload,
        args: dict,
        mode: Mode,
        batch_size: int,
        input_shape: tuple[int, ...],
        device: str,
    ) -> TorchSession:
        """Build the model and a synthetic batch on `device`."""
        target = torch_device(device)
        classes = workload.classes_for(args)
        recipe = workload.recipe
        ctx = BuildContext(args, mode.name, input_shape, classes, mode.knobs)
        model = workload.builder(ctx).to(target).train()
        optimizer = build_optimizer(recipe, model.parameters(), recipe.learning_rate)
        generator = torch.Generator().manual_seed(1234)
        if workload.input_kind == "tokens":
            inputs = torch.randint(
                0, workload.num_classes, (batch_size, *input_shape), generator=generator
            )
            targets = torch.randint(
                0, workload.num_classes, (batch_size, *input_shape), generator=generator
            )
        else:
            inputs = torch.randn((batch_size, *input_shape), generator=generator)
            shape = (batch_size, classes) if recipe.multi_label else (batch_size,)
            targets = torch.randint(
                0, 2 if recipe.multi_label else classes, shape, generator=generator
            )
        return TorchSession(model, optimizer, inputs.to(target), targets.to(target), target, recipe)

    def environment(self) -> dict[str, Any]:
        """torch, torchvision, CUDA and cuDNN versions, and the GPU as torch sees it."""
        info: dict[str, Any] = {
            "framework": "torch",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()
            if torch.backends.cudnn.is_available()
            else None,
            "cuda_available": torch.cuda.is_available(),
            "num_threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        try:
            info["torchvision"] = metadata.version("torchvision")
        except metadata.PackageNotFoundError:
            info["torchvision"] = None
        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            info["torch_device_name"] = torch.cuda.get_device_name(0)
            info["torch_capability"] = f"{major}.{minor}"
        return info


ADAPTER = TorchAdapter()
