"""``train.device`` checked on the machine the job runs on, before the job starts (so a sweep records it)."""

from __future__ import annotations

import torch

DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"


def device_problem(name: str) -> str | None:
    """Why ``train.device=name`` cannot run here, in one line; None when it can."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return f"train.device={name!r} is not a device; use {DEVICE_FORMS}"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return f"train.device={name} but CUDA is not available on this machine (use train.device=auto or cpu)"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"train.device={name} but this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        return f"train.device={name} but MPS is not available on this machine (use train.device=auto or cpu)"
    elif device.type not in ("cpu", "cuda", "mps"):
        return f"train.device={name!r} is not supported; use {DEVICE_FORMS}"
    return None
