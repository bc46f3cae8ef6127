"""Sinusoidal embeddings: of the image grid (keys, p_k) and of reference points (p_s).

Both follow the authors' layout: per axis ``n`` channels where channel pair (2i, 2i+1) shares the frequency
``1 / temperature^(2i/n)`` and holds (sin, cos); the y half comes first, then x.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _sine(coords: Tensor, num_feats: int, temperature: float) -> Tensor:
    """(..., ) angles-in-radians-scale coordinates → (..., num_feats) interleaved sin/cos."""
    freq_index = torch.arange(num_feats // 2, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * freq_index / num_feats)
    angles = coords[..., None] / dim_t
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """p_k: the normalised 2-D sine embedding of every unpadded feature-map cell (DETR's, ``normalize=True``).

    The coordinate of a cell is its 1-based rank among the valid cells of its row/column divided by their count,
    so padding never shifts the positions of real pixels.
    """

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, scale: float = 2 * math.pi):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale

    def forward(self, mask: Tensor) -> Tensor:
        """mask (B, h, w) True on padding → pos (B, 2·num_pos_feats, h, w)."""
        valid = ~mask
        y = valid.cumsum(1, dtype=torch.float32)
        x = valid.cumsum(2, dtype=torch.float32)
        eps = 1e-6
        y = y / (y[:, -1:, :] + eps) * self.scale
        x = x / (x[:, :, -1:] + eps) * self.scale
        pos = torch.cat((_sine(y, self.num_pos_feats, self.temperature), _sine(x, self.num_pos_feats, self.temperature)), -1)
        return pos.permute(0, 3, 1, 2)


def sine_embed_points(points: Tensor, num_feats: int = 128, temperature: float = 10000.0) -> Tensor:
    """p_s: reference points (..., 2) as (x, y) in [0, 1] → (..., 2·num_feats), y half first."""
    scaled = points * (2 * math.pi)
    return torch.cat((_sine(scaled[..., 1], num_feats, temperature), _sine(scaled[..., 0], num_feats, temperature)), -1)
