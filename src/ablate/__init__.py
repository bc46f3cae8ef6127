"""ablate: an ablation-study harness for Conditional DETR (Meng et al., ICCV 2021).

Python API::

    cfg = ablate.compose(["csq=T", "proj=scalar"])   # what `python -m ablate csq=T proj=scalar` runs
    model = ablate.build_model(cfg)                  # a torch.nn.Module
    out = model([image1, image2], return_attention=True)
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if "torch" not in sys.modules:
    # OpenMP threads that spin while waiting make a CPU step 5-10x slower as soon as anything else runs on the
    # machine (measured: 10.5 s vs 1.4 s per tiny step under load); sleeping waiters cost little when it is quiet.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from torch import nn

__all__ = ["build_model", "compose"]


def compose(overrides: list[str] | None = None) -> DictConfig:
    """The validated config of ``python -m ablate <overrides>``."""
    from ablate.config import compose as _compose

    return _compose(overrides)


def build_model(cfg: DictConfig, num_classes: int | None = None) -> nn.Module:
    """The detector that config trains (see :func:`ablate.models.builder.build_model`)."""
    from ablate.models.builder import build_model as _build

    return _build(cfg, num_classes)
