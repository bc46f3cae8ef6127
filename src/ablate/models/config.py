"""Structured-config schema of the model (``model`` group) and the axis choices."""

from __future__ import annotations

from dataclasses import dataclass, field

from ablate.models.backbone import BACKBONES

BackboneName = BACKBONES.choices("BackboneName")


@dataclass
class BackboneConfig:
    name: BackboneName = BackboneName.tiny  # type: ignore[valid-type]
    dilation: bool = False  # DC5
    weights: str | None = None  # local state-dict path, or "imagenet" (torchvision download, opt-in)
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # tiny only


@dataclass
class ModelConfig:
    name: str = "tiny"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    hidden_dim: int = 128
    nheads: int = 4
    enc_layers: int = 2
    dec_layers: int = 3
    dim_feedforward: int = 512
    dropout: float = 0.0
    num_queries: int = 20
    detr_num_queries: int = 7  # the query count the paper pairs with DETR's softmax loss (100 vs 300 at R50)
    num_classes: int | None = None  # None: from the data (largest category id + 1)
    aux_loss: bool = True
    init_from: str | None = None  # a checkpoint of ours or of the authors' (converted on load)
    max_resolution: int | None = None  # data.resolution=auto: cap on the short side (None: the data's sizes)


@dataclass
class AxisChoice:
    """A config-group node of one ablation axis: ``csq``, ``proj`` or ``ref``."""

    name: str = "???"
