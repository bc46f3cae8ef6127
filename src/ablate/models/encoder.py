"""DETR's post-norm transformer encoder (shared by every variant)."""

from __future__ import annotations

import copy

import torch.nn.functional as F
from torch import Tensor, nn

from ablate.models.attention import PackedAttention
from ablate.models.dropout import Dropout


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = PackedAttention(d_model, nheads, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, src: Tensor, pos: Tensor, bias: Tensor | None) -> Tensor:
        qk = src + pos
        attn, _ = self.self_attn(qk, qk, src, bias)
        src = self.norm1(src + self.dropout(attn))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(src))))
        return self.norm2(src + self.dropout(ffn))


class Encoder(nn.Module):
    def __init__(self, layer: EncoderLayer, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def forward(self, src: Tensor, pos: Tensor, bias: Tensor | None) -> Tensor:
        """src, pos (B, S, d) → memory (B, S, d)."""
        for layer in self.layers:
            src = layer(src, pos, bias)
        return src
