"""ablate: an ablation-study harness for Conditional DETR (Meng et al., ICCV 2021).

Python API::

    import ablate
    import torch
    from PIL import Image

    cfg = ablate.compose(["csq=T", "proj=scalar"])   # what `python -m ablate csq=T proj=scalar` runs
    model = ablate.build_model(cfg)                  # a torch.nn.Module, untrained
    image1, image2 = torch.randn(3, 128, 160), torch.randn(3, 96, 128)  # preprocessed images, any sizes
    out = model([image1, image2], return_attention=True)

    model = ablate.from_run("outputs/runs/2026-12-01/12-00-00-000000")  # a trained job folder, in eval mode
    model.cfg.csq.name                               # the config it was trained with
    detections = model.predict([Image.open("photo.jpg")], threshold=0.5)  # PIL, uint8 or [0, 1] float
    detections[0]["boxes"]                           # (N, 4) xyxy in photo.jpg's pixels, best first
    detections[0]["scores"], detections[0]["labels"], detections[0]["names"]  # category ids and names
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

    from ablate.inference import Predictor

__all__ = ["build_model", "compose", "from_run"]


def compose(overrides: list[str] | None = None) -> DictConfig:
    """The validated config of ``python -m ablate <overrides>``."""
    from ablate.config import compose as _compose

    return _compose(overrides)


def build_model(cfg: DictConfig, num_classes: int | None = None) -> nn.Module:
    """The detector that config trains (see :func:`ablate.models.builder.build_model`)."""
    from ablate.models.builder import build_model as _build

    return _build(cfg, num_classes)


def from_run(run: str | os.PathLike, *, device: str = "cpu") -> Predictor:
    """A trained job's model in eval mode, with ``cfg`` and ``predict`` (see :func:`ablate.inference.from_run`)."""
    from ablate.inference import from_run as _from_run

    return _from_run(run, device=device)
