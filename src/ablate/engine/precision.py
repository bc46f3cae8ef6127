"""Numeric precision of the model's forward pass: ``train.precision=fp32`` (the authors') or ``bf16`` autocast,
on CUDA and on CPU alike. Losses, matching and post-processing always run in fp32 on fp32 outputs."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ablate.registry import Choice


class Precision(Choice):
    fp32 = "fp32"
    bf16 = "bf16"


def autocast(device: torch.device, precision: Precision | str) -> contextlib.AbstractContextManager:
    """The model's forward under bf16 autocast when asked (CPU or CUDA), else nothing."""
    if Precision(precision) is Precision.fp32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def to_fp32(outputs: Any) -> Any:
    """The model's outputs (nested dicts/lists of tensors) with every floating tensor in fp32, so the criterion and
    the matcher never mix bf16 predictions with fp32 targets or weights."""
    if torch.is_tensor(outputs):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, dict):
        return {k: to_fp32(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(to_fp32(v) for v in outputs)
    return outputs
