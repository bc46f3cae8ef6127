"""A toy model config small enough to build and run every variant in milliseconds."""

import torch

from ablate.models.config import BackboneConfig, ModelConfig
from ablate.models.detector import build_detector

TOY = ModelConfig(backbone=BackboneConfig(name="tiny", widths=[4, 8]), hidden_dim=16, nheads=2, enc_layers=1,
                  dec_layers=3, dim_feedforward=32, num_queries=5)


def toy(seed: int = 0, **axes):
    kwargs = dict(csq="full", proj="diagonal", ref="query", focal=True, offset=True, num_classes=4)
    kwargs.update(axes)
    torch.manual_seed(seed)
    return build_detector(TOY, **kwargs)


def toy_images(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 24, 32, generator=g), torch.randn(3, 32, 20, generator=g)]


def toy_targets():
    return [{"labels": torch.tensor([1, 3]), "boxes": torch.tensor([[0.3, 0.4, 0.2, 0.3], [0.7, 0.6, 0.3, 0.2]])},
            {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]
