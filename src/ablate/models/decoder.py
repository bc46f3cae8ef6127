"""The decoder: Conditional DETR's layer (concatenated content/spatial cross-attention) and DETR's layer.

Shapes are batch-first: queries (B, Q, d), memory and key positions (B, S, d). Each layer returns its raw
output (before the shared ``norm``) and, when asked, its cross-attention maps split as in the paper's
figures: ``spatial`` softmax(p_qᵀp_k), ``content`` softmax(c_qᵀc_k), ``combined`` (the attention used).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ablate.models.attention import HeadAttention, PackedAttention, attention_map, concat_heads, split_heads
from ablate.models.dropout import Dropout
from ablate.models.spatial_query import SpatialQuery

AttentionMaps = dict[str, Tensor]


def per_query(linear: nn.Module, x: Tensor) -> Tensor:
    """``linear(x)``, computed once when x is a per-query tensor broadcast over the batch (batch stride 0, as the
    object queries o_q and p_s are): the (1, Q, ·) result broadcasts in the sums it feeds, instead of B copies."""
    return linear(x[:1]) if x.dim() == 3 and x.shape[0] > 1 and x.stride(0) == 0 else linear(x)


def add_ffn_and_norms(layer: nn.Module, d_model: int, dim_feedforward: int, dropout: float) -> None:
    """The FFN and the three post-norms every decoder layer has, under the authors' parameter names."""
    layer.linear1 = nn.Linear(d_model, dim_feedforward)
    layer.linear2 = nn.Linear(dim_feedforward, d_model)
    layer.norm1, layer.norm2, layer.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
    layer.dropout = Dropout(dropout)


def ffn(layer: nn.Module, x: Tensor) -> Tensor:
    """Step 4: x + FFN(x), then the third norm."""
    return layer.norm3(x + layer.dropout(layer.linear2(layer.dropout(F.relu(layer.linear1(x))))))

class ConditionalDecoderLayer(nn.Module):
    """One Conditional DETR decoder layer (paper Fig. 3). Parameter names follow the authors' code."""

    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, dropout: float, is_first: bool):
        super().__init__()
        self.nheads, self.is_first = nheads, is_first
        linear = lambda: nn.Linear(d_model, d_model)  # noqa: E731
        # self-attention: separate content / object-query projections for q and k
        self.sa_qcontent_proj, self.sa_qpos_proj = linear(), linear()
        self.sa_kcontent_proj, self.sa_kpos_proj = linear(), linear()
        self.sa_v_proj = linear()
        self.self_attn = HeadAttention(d_model, nheads, dropout)
        # cross-attention: content and spatial parts projected separately, concatenated per head
        self.ca_qcontent_proj, self.ca_kcontent_proj, self.ca_v_proj = linear(), linear(), linear()
        self.ca_kpos_proj, self.ca_qpos_sine_proj = linear(), linear()
        self.ca_qpos_proj = linear() if is_first else None  # layer 1 adds the object query to c_q
        self.cross_attn = HeadAttention(d_model, nheads, dropout)
        add_ffn_and_norms(self, d_model, dim_feedforward, dropout)

    def forward(
        self, f: Tensor, memory: Tensor, key_pos: Tensor, bias: Tensor | None, query_pos: Tensor,
        p_s: Tensor, spatial_query: SpatialQuery, need_weights: bool = False,
    ) -> tuple[Tensor, AttentionMaps | None]:
        m = self.nheads
        # 1. self-attention among the queries; the object query o_q is added to q and k
        q = split_heads(self.sa_qcontent_proj(f) + per_query(self.sa_qpos_proj, query_pos), m)
        k = split_heads(self.sa_kcontent_proj(f) + per_query(self.sa_kpos_proj, query_pos), m)
        sa, _ = self.self_attn(q, k, self.sa_v_proj(f))
        c_q = self.norm1(f + self.dropout(sa))

        # 2. the conditional spatial query (layer 1: T = I, so p_q = p_s)
        p_q = p_s if self.is_first else spatial_query(f=f, c_q=c_q, p_s=p_s)

        # 3. cross-attention: per head, q = [c_q ; p_q] and k = [c_k ; p_k], so logits = c_qᵀc_k + p_qᵀp_k
        q_content, q_spatial = self.ca_qcontent_proj(c_q), self.ca_qpos_sine_proj(p_q)
        k_content, k_spatial = self.ca_kcontent_proj(memory), self.ca_kpos_proj(key_pos)
        if self.is_first:  # the authors' layer-1 terms: o_q into the content query, p_k into the content key
            q_content = q_content + per_query(self.ca_qpos_proj, query_pos)
            k_content = k_content + k_spatial
        q, k = concat_heads(q_content, q_spatial, m), concat_heads(k_content, k_spatial, m)
        ca, combined = self.cross_attn(q, k, self.ca_v_proj(memory), bias, need_weights)
        x = self.norm2(c_q + self.dropout(ca))

        # 4. feed-forward
        x = ffn(self, x)

        maps = None
        if need_weights:
            scale = 1.0 / math.sqrt(q.shape[-1])
            maps = {
                "spatial": attention_map(split_heads(q_spatial, m), split_heads(k_spatial, m), bias, scale),
                "content": attention_map(split_heads(q_content, m), split_heads(k_content, m), bias, scale),
                "combined": combined,
            }
        return x, maps


class DETRDecoderLayer(nn.Module):
    """DETR's decoder layer: q = c_q + o_q and k = c_k + p_k, added, not concatenated."""

    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, dropout: float, use_positions: bool):
        super().__init__()
        self.use_positions = use_positions  # False: content-only cross-attention (the §2e experiment)
        self.self_attn = PackedAttention(d_model, nheads, dropout)
        self.multihead_attn = PackedAttention(d_model, nheads, dropout)
        add_ffn_and_norms(self, d_model, dim_feedforward, dropout)

    def forward(
        self, f: Tensor, memory: Tensor, key_pos: Tensor, bias: Tensor | None, query_pos: Tensor,
        p_s: Tensor | None = None, spatial_query: SpatialQuery | None = None, need_weights: bool = False,
    ) -> tuple[Tensor, AttentionMaps | None]:
        # 1. self-attention with the object queries added to q and k
        qk = f + query_pos
        sa, _ = self.self_attn(qk, qk, f)
        c_q = self.norm1(f + self.dropout(sa))

        # 2. cross-attention: (c_q + o_q)ᵀ(c_k + p_k)
        query = c_q + query_pos if self.use_positions else c_q
        key = memory + key_pos if self.use_positions else memory
        ca, combined = self.multihead_attn(query, key, memory, bias, need_weights)
        x = self.norm2(c_q + self.dropout(ca))

        # 3. feed-forward
        x = ffn(self, x)

        maps = None
        if need_weights:
            attn = self.multihead_attn
            q = attn.project(query, 0)
            scale = 1.0 / math.sqrt(q.shape[-1])
            maps = {  # the paper draws DETR's spatial map as softmax((c_q + o_q)ᵀ p_k)
                "spatial": attention_map(q, attn.project(key_pos, 1, bias=False), bias, scale),
                "content": attention_map(attn.project(c_q, 0), attn.project(memory, 1), bias, scale),
                "combined": combined,
            }
        return x, maps


class Decoder(nn.Module):
    """Runs the layers from f = 0; returns every layer's output after the shared ``norm`` (for the heads)."""

    def __init__(self, layers: list[nn.Module], d_model: int, spatial_query: SpatialQuery):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)
        self.spatial_query = spatial_query

    def forward(
        self, memory: Tensor, key_pos: Tensor, bias: Tensor | None, query_pos: Tensor, p_s: Tensor | None,
        need_weights: bool = False,
    ) -> tuple[Tensor, list[AttentionMaps]]:
        f = query_pos.new_zeros(query_pos.shape)
        hs, maps = [], []
        for layer in self.layers:
            f, layer_maps = layer(f, memory, key_pos, bias, query_pos, p_s, self.spatial_query, need_weights)
            hs.append(self.norm(f))
            if layer_maps is not None:
                maps.append(layer_maps)
        return torch.stack(hs), maps
