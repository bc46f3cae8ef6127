"""The authors' optimiser (AdamW with a backbone group) and schedule (step drop, here in steps, plus an optional
linear warm-up used by the laptop recipe)."""

from __future__ import annotations

import torch
from torch import nn

from ablate.engine.config import TrainConfig


def build_optimizer(model: nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """Two groups, as the authors: the backbone at ``lr_backbone``, everything else at ``lr``."""
    backbone = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    groups = [{"params": rest, "lr": train.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": train.lr_backbone})
    # fused: one kernel per step instead of ~6 passes per tensor (3× faster on CPU, same update rule)
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay, fused=fused or None)


def lr_factor(step: int, *, warmup: int, drop_step: int | None) -> float:
    """Linear warm-up over ``warmup`` steps, then ×0.1 from ``drop_step`` on (the paper's StepLR, in steps)."""
    factor = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    return factor * (0.1 if drop_step is not None and step >= drop_step else 1.0)


def build_scheduler(optimizer: torch.optim.Optimizer, train: TrainConfig, steps_per_epoch: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    drop = drop_step(train, steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup=train.warmup_steps, drop_step=drop))


def epoch_steps(train: TrainConfig, steps_per_epoch: int) -> int:
    """Steps of one schedule epoch: the data's epoch, or ``train.min_epoch_steps`` for a smaller data set (so a
    600-image set trains as many steps per "epoch" as the preset's data would, not 19)."""
    return max(steps_per_epoch, train.min_epoch_steps)


def total_steps(train: TrainConfig, steps_per_epoch: int) -> int:
    """``train.max_steps`` when set, else ``train.epochs`` schedule epochs."""
    return train.max_steps or train.epochs * epoch_steps(train, steps_per_epoch)


def drop_step(train: TrainConfig, steps_per_epoch: int) -> int | None:
    """The step of the ×0.1 drop: ``train.lr_drop`` schedule epochs in."""
    return int(train.lr_drop * epoch_steps(train, steps_per_epoch)) if train.lr_drop is not None else None
