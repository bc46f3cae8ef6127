"""``build_model(cfg)``: the detector for a composed config — its ablation axes and model sizes, nothing else
(weights are loaded by the job: ``ablate.engine.weights``)."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import nn

from ablate.models.detector import Detector, build_detector


def build_model(cfg: DictConfig, num_classes: int | None = None) -> Detector:
    """The model ``python -m ablate`` trains for ``cfg``. The class count is ``model.num_classes``, else
    ``num_classes``, else what the configured data needs (largest category id + 1, read from its categories)."""
    n = cfg.model.num_classes or num_classes
    if n is None:
        from ablate.data import data_num_classes

        n = data_num_classes(cfg.data)
    return build_detector(cfg.model, csq=cfg.csq.name, proj=cfg.proj.name, ref=cfg.ref.name, focal=cfg.focal,
                          offset=cfg.offset, num_classes=n)


def count_parameters(model: nn.Module) -> dict[str, int]:
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
