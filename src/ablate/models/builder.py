"""``build_model(cfg)``: the detector for a composed config (axes, model sizes, optional weights)."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import nn

from ablate.models.convert import load_pretrained, read_checkpoint
from ablate.models.detector import Detector, build_detector


def build_model(cfg: DictConfig, num_classes: int | None = None) -> Detector:
    """The model ``python -m ablate`` trains for ``cfg``. ``num_classes`` defaults to ``model.num_classes``,
    then to what the data needs (largest category id + 1)."""
    n = cfg.model.num_classes or num_classes
    if n is None:
        from ablate.data import data_num_classes

        n = data_num_classes(cfg.data)
    model = build_detector(cfg.model, csq=cfg.csq.name, proj=cfg.proj.name, ref=cfg.ref.name, focal=cfg.focal,
                           offset=cfg.offset, num_classes=n, train_backbone=cfg.train.lr_backbone > 0)
    if cfg.model.init_from:
        load_pretrained(model, read_checkpoint(cfg.model.init_from))
    return model


def count_parameters(model: nn.Module) -> dict[str, int]:
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
