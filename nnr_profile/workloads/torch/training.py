"""Train a PyTorch workload on a real dataset to the end, and read predictions and weights.

Used by variability replicas, the gradient-SNR analysis and the loss landscape. Two seeds
drive the randomness the study separates: `init_seed` (weight initialisation) and
`data_seed` (data order, dropout, and crops and flips unless the recipe fixes them). Kernel
(implementation) noise is set by the determinism mode, applied before this module is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nnr_profile.core.errors import UsageError
from nnr_profile.workloads.checks import check_labels, training_input_shape
from nnr_profile.workloads.datasets import Dataset
from nnr_profile.workloads.preprocessing import PAD, augmentation_draws, augmentation_rng
from nnr_profile.workloads.recipes import Recipe
from nnr_profile.workloads.registry import BuildContext, Workload
from nnr_profile.workloads.torch.adapter import ADAPTER, build_loss, build_optimizer, torch_device

EVAL_BATCH = 1024


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (as a trial does)."""
    ADAPTER.seed(seed)


def model_input_shape(workload: Workload, dataset: Dataset) -> tuple[int, ...]:
    """The input shape the workload is built with for `dataset` (flattened for `features`)."""
    shape = tuple(int(n) for n in dataset.x_train.shape[1:])
    return training_input_shape(workload, dataset.name, shape, shape[1:])


def build_model(
    workload: Workload, args: dict[str, Any], dataset: Dataset, mode: str, device: str
) -> nn.Module:
    """The workload's model for `dataset`'s inputs and classes, on `device` ("cpu" or "cuda")."""
    check_labels(workload, dataset.info)
    ctx = BuildContext(args, mode, model_input_shape(workload, dataset), dataset.num_classes)
    return workload.builder(ctx).to(torch_device(device))


def prepare(
    workload: Workload, args: dict[str, Any], dataset: Dataset, mode: str, device: str, seed: int
) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Seed with `seed`, build the model, and put the dataset on `device`: (model, tensors)."""
    seed_everything(seed)
    model = build_model(workload, args, dataset, mode, device)
    return model, device_tensors(dataset, workload, torch_device(device))


def device_tensors(
    dataset: Dataset, workload: Workload, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """x_train, y_train, x_test, y_test on `device` (flattened for `features` models)."""
    x_train = torch.from_numpy(dataset.x_train)
    x_test = torch.from_numpy(dataset.x_test)
    if workload.input_kind == "features":
        x_train, x_test = x_train.flatten(1), x_test.flatten(1)
    return (
        x_train.to(device),
        torch.from_numpy(dataset.y_train).to(device),
        x_test.to(device),
        torch.from_numpy(dataset.y_test).to(device),
    )


def model_logits(output: Any) -> torch.Tensor:
    """The logits of a model's output (its `logits` where it returns more, as inception_v3)."""
    return output.logits if hasattr(output, "logits") else output


def train(
    model: nn.Module,
    workload: Workload,
    dataset: Dataset,
    tensors: tuple[torch.Tensor, ...],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    data_seed: int,
) -> list[float]:
    """Train for `epochs` as the workload's recipe says; returns mean loss per epoch.

    Optimizer, schedule (from base rate `learning_rate`), loss and augmentation come from
    `workload.recipe`; data order from a generator seeded with `data_seed`, crops and flips
    per example from `augmentation_rng` (the recipe's fixed seed, else `data_seed`). Flips
    apply only where the dataset allows them.
    """
    x_train, y_train = tensors[0], tensors[1]
    recipe = workload.recipe
    optimizer = build_optimizer(recipe, model.parameters(), learning_rate)
    steps_per_epoch = -(-len(y_train) // batch_size)
    total_steps = max(1, epochs * steps_per_epoch)
    if recipe.schedule == "cosine":
        schedule: Any = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    else:
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: recipe.lr_factor(step // steps_per_epoch, step, total_steps)
        )
    generator = torch.Generator().manual_seed(data_seed)
    augment = augmentation_rng(recipe, data_seed)
    loss_fn = build_loss(recipe)
    image = workload.input_kind == "image"
    flip = "flip" in recipe.augmentation and dataset.info.flip_augment and image
    pad = PAD if "pad_crop" in recipe.augmentation and image else 0
    losses: list[float] = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y_train), generator=generator).to(x_train.device)
        offsets, mask = (
            torch.from_numpy(a).to(x_train.device)
            for a in augmentation_draws(augment, len(y_train), pad, flip)
        )
        total = torch.zeros((), device=x_train.device)
        for first in range(0, len(order), batch_size):
            index = order[first : first + batch_size]
            inputs = x_train[index].float()  # uint8 raw pixels are cast per batch
            if pad:
                inputs = pad_crop(inputs, offsets[index], pad)
            if flip:
                inputs = torch.where(mask[index][:, None, None, None], inputs.flip(-1), inputs)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model_logits(model(inputs)), y_train[index])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.detach() * len(index)
        losses.append(float(total.item()) / len(order))
    return losses


def pad_crop(images: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Each (C, H, W) image zero-padded by `pad` and cropped back at its (dy, dx) offset."""
    n, _, height, width = images.shape
    padded = nn.functional.pad(images, (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    rows = offsets[:, :1] + torch.arange(height, device=images.device)
    cols = offsets[:, 1:] + torch.arange(width, device=images.device)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, multi_label: bool = False) -> torch.Tensor:
    """Predictions in eval mode, on the CPU as int64: the argmax class per example, or with
    `multi_label` one 0/1 per output (sigmoid above 0.5, i.e. a positive logit, as Keras's
    `BinaryAccuracy` and `TruePositives` threshold)."""
    model.eval()
    out = []
    for i in range(0, len(inputs), EVAL_BATCH):
        logits = model_logits(model(inputs[i : i + EVAL_BATCH].float()))
        out.append((logits > 0).long().cpu() if multi_label else logits.argmax(-1).cpu())
    return torch.cat(out)


@torch.no_grad()
def mean_loss(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, recipe: Recipe | None = None
) -> float:
    """Mean loss over `inputs` in eval mode (the recipe's; default cross-entropy on logits)."""
    model.eval()
    loss_fn = build_loss(recipe or Recipe(), reduction="sum")
    total = 0.0
    for i in range(0, len(inputs), EVAL_BATCH):
        outputs = model_logits(model(inputs[i : i + EVAL_BATCH].float()))
        total += float(loss_fn(outputs, targets[i : i + EVAL_BATCH]))
    return total / len(inputs)


def named_parameters_sorted(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Trainable parameters sorted by name (the order of every flat weight vector)."""
    return sorted(model.named_parameters(), key=lambda item: item[0])


def flat_weights(model: nn.Module) -> np.ndarray:
    """All parameters, sorted by name, flattened into one float32 vector."""
    with torch.no_grad():
        parts = [p.detach().float().reshape(-1).cpu() for _, p in named_parameters_sorted(model)]
    return torch.cat(parts).numpy().astype(np.float32)


def flat_non_trainable(model: nn.Module) -> np.ndarray:
    """Floating-point buffers (BatchNorm running statistics), sorted by name, as float32.

    Integer buffers (BatchNorm's `num_batches_tracked` counter) are left out: Keras keeps no
    such counter, and it is equal for every replica trained on the same schedule.
    """
    with torch.no_grad():
        parts = [
            b.detach().float().reshape(-1).cpu()
            for _, b in sorted(model.named_buffers(), key=lambda item: item[0])
            if b.is_floating_point()
        ]
    return torch.cat(parts).numpy().astype(np.float32) if parts else np.zeros(0, np.float32)


def load_flat_weights(model: nn.Module, flat: np.ndarray) -> None:
    """Copy a vector from `flat_weights` back into the model's parameters."""
    params = named_parameters_sorted(model)
    expected = sum(p.numel() for _, p in params)
    if flat.size != expected:
        raise UsageError(
            f"stored weights have {flat.size} values but the model has {expected}: "
            "same --model, --dataset and --workload-arg as the stored replicas?"
        )
    offset = 0
    with torch.no_grad():
        for _, p in params:
            chunk = torch.from_numpy(np.array(flat[offset : offset + p.numel()], dtype=np.float32))
            p.copy_(chunk.reshape(p.shape).to(p.device, p.dtype))
            offset += p.numel()


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, inputs: torch.Tensor) -> None:
    """Recompute BatchNorm running statistics over `inputs` (after loading bare parameters)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i in range(0, len(inputs), EVAL_BATCH):
        model(inputs[i : i + EVAL_BATCH])
