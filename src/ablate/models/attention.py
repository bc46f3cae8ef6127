"""Multi-head attention over already-projected queries, keys and values.

Conditional DETR's attention has no input projection (the decoder layer owns the separate content/position
projections), so the core here is ``attend``: the fused ``scaled_dot_product_attention`` when no weights are
asked for, an explicit softmax path when they are. ``PackedAttention`` adds DETR's packed in-projection
(``in_proj_weight`` rows = W_q, W_k, W_v, as in ``nn.MultiheadAttention``) for the encoder and DETR's decoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ablate.models.dropout import dropout


def split_heads(x: Tensor, nheads: int) -> Tensor:
    """(B, L, nheads·dh) → (B, nheads, L, dh)."""
    b, n, c = x.shape
    return x.view(b, n, nheads, c // nheads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, nheads, L, dh) → (B, L, nheads·dh)."""
    b, m, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, m * d)


def concat_heads(content: Tensor, spatial: Tensor, nheads: int) -> Tensor:
    """Per-head concatenation [content_h ; spatial_h]: (B, L, d) × 2 → (B, nheads, L, 2·d/nheads)."""
    return torch.cat((split_heads(content, nheads), split_heads(spatial, nheads)), dim=-1)


def padding_bias(key_padding_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """(B, S) True on padding → additive (B, 1, 1, S) bias with −inf on padded keys.

    None when nothing is padded (checked on CPU only, where it is free) so SDPA can take its unmasked kernel.
    """
    if key_padding_mask is None or (key_padding_mask.device.type == "cpu" and not key_padding_mask.any()):
        return None
    bias = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    return bias.masked_fill(key_padding_mask, float("-inf"))[:, None, None, :]


def attend(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, dropout_p: float, need_weights: bool
) -> tuple[Tensor, Tensor | None]:
    """q (B,M,Q,E), k (B,M,S,E), v (B,M,S,Ev) → out (B,M,Q,Ev), weights (B,M,Q,S) or None. Scale 1/√E."""
    # On CPU the explicit path below is faster than SDPA (i) with dropout, where SDPA runs its math kernel whose
    # NaN-safe softmax adds three passes (isneginf, all, where) over the logits, and (ii) when q/k and v widths
    # differ (the conditional cross-attention: 64-d [content; spatial] q/k, 32-d v): ~1.5-2× in forward.
    fused = q.device.type != "cpu" or (dropout_p == 0 and q.shape[-1] == v.shape[-1])
    if not need_weights and fused:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p), None
    logits = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    if bias is not None:
        logits = logits + bias
    weights = logits.softmax(-1)
    return dropout(weights, dropout_p, training=dropout_p > 0) @ v, weights if need_weights else None


class HeadAttention(nn.Module):
    """Attention on pre-projected q/k/v (any widths) followed by ``out_proj``: the authors' custom module."""

    def __init__(self, value_dim: int, nheads: int, dropout: float = 0.0):
        super().__init__()
        self.nheads = nheads
        self.dropout = dropout
        self.out_proj = nn.Linear(value_dim, value_dim)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """q, k: (B, M, L, E) already split into heads; v: (B, L, value_dim)."""
        p = self.dropout if self.training else 0.0
        out, weights = attend(q, k, split_heads(v, self.nheads), bias, p, need_weights)
        return self.out_proj(merge_heads(out)), weights


class PackedAttention(nn.Module):
    """DETR's multi-head attention (same parameters and key names as ``nn.MultiheadAttention``), batch-first."""

    def __init__(self, d_model: int, nheads: int, dropout: float = 0.0):
        super().__init__()
        self.nheads = nheads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def project(self, x: Tensor, which: int, bias: bool = True) -> Tensor:
        """Apply W_q (0), W_k (1) or W_v (2), optionally without its bias, and split heads."""
        d = self.out_proj.in_features
        w = self.in_proj_weight[which * d : (which + 1) * d]
        b = self.in_proj_bias[which * d : (which + 1) * d] if bias else None
        return split_heads(F.linear(x, w, b), self.nheads)

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``bias``: additive key-padding bias from :func:`padding_bias` (computed once per forward)."""
        p = self.dropout if self.training else 0.0
        q, k, v = self.project(query, 0), self.project(key, 1), self.project(value, 2)
        out, weights = attend(q, k, v, bias, p, need_weights)
        return self.out_proj(merge_heads(out)), weights


def attention_map(q: Tensor, k: Tensor, bias: Tensor | None, scale: float) -> Tensor:
    """softmax(scale · q kᵀ + bias): q (B,M,Q,E), k (B,M,S,E) → (B,M,Q,S). For the paper's attention figures."""
    logits = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        logits = logits + bias
    return logits.softmax(-1)
