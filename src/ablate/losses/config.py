"""Structured-config schema of the matcher and loss weights (``loss`` node)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LossConfig:
    cls_coef: float | None = None  # None: 2 with focal loss (Conditional DETR), 1 with softmax CE (DETR)
    bbox_coef: float = 5.0
    giou_coef: float = 2.0
    cost_class: float | None = None  # None: same rule as cls_coef
    cost_bbox: float = 5.0
    cost_giou: float = 2.0
    eos_coef: float = 0.1  # weight of the no-object class (softmax CE only)
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
