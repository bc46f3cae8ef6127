"""Axis ``csq``: how the cross-attention spatial query p_q is formed in decoder layers 2… (paper Table 3).

f is the previous decoder layer's output, c_q the current layer's self-attention output, p_s the sine
embedding of the reference point and T the ``proj`` transformation. Layer 1 is the same for every
conditional form (p_q = p_s, i.e. T = I, plus the object-query terms); the decoder layer handles that.
``detr`` and ``detr_content`` are DETR's additive cross-attention and build a different decoder layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ablate.models.projection import Projection
from ablate.registry import Registry

SPATIAL_QUERIES: Registry[SpatialQuery] = Registry("csq")


class SpatialQuery(nn.Module):
    """Computes p_q from (f, c_q, p_s). Class attributes say what the form uses, so unused axes build nothing."""

    label: str  # how reports print this choice (result.json "labels")
    conditional = True  # concatenated content/spatial cross-attention (False: DETR's additive form)
    uses_proj = False
    # proj choices that make this form a degenerate model: choice → why (checked before anything is built)
    incompatible_proj: dict[str, str] = {}

    def __init__(self, proj: Projection | None = None):
        super().__init__()
        self.proj = proj

    def forward(self, f: Tensor, c_q: Tensor, p_s: Tensor) -> Tensor:
        raise NotImplementedError


@SPATIAL_QUERIES.register("full")
class TransformedPosition(SpatialQuery):
    """CSQ: p_q = T(f)·p_s."""

    label = "CSQ"

    uses_proj = True

    def forward(self, f: Tensor, c_q: Tensor, p_s: Tensor) -> Tensor:
        return self.proj(f, p_s)


@SPATIAL_QUERIES.register("C")
class ContentOnly(SpatialQuery):
    """CSQ-C: p_q = f."""

    label = "CSQ-C"

    def forward(self, f: Tensor, c_q: Tensor, p_s: Tensor) -> Tensor:
        return f


@SPATIAL_QUERIES.register("T")
class TransformOnly(SpatialQuery):
    """CSQ-T: p_q = T(f)·𝟙 (λ_q itself for a diagonal T)."""

    label = "CSQ-T"

    uses_proj = True
    incompatible_proj = {"identity": "p_q = T(f)·𝟙 with T = I is the constant 𝟙 for every query and image, "
                                     "so the spatial query carries nothing (a degenerate model); "
                                     "use another proj (the paper's CSQ-T uses diagonal)"}

    def forward(self, f: Tensor, c_q: Tensor, p_s: Tensor) -> Tensor:
        return self.proj(f, torch.ones_like(f))


@SPATIAL_QUERIES.register("P")
class PositionOnly(SpatialQuery):
    """CSQ-P: p_q = p_s."""

    label = "CSQ-P"

    def forward(self, f: Tensor, c_q: Tensor, p_s: Tensor) -> Tensor:
        return p_s


@SPATIAL_QUERIES.register("I")
class SelfAttentionTransform(SpatialQuery):
    """CSQ-I: p_q = T(c_q)·p_s, T predicted from the self-attention output instead of f."""

    label = "CSQ-I"

    uses_proj = True

    def forward(self, f: Tensor, c_q: Tensor, p_s: Tensor) -> Tensor:
        return self.proj(c_q, p_s)


@SPATIAL_QUERIES.register("detr")
class DETRQuery(SpatialQuery):
    """DETR: the object query is added to the content query, the key position to the key; no p_s."""

    label = "DETR"

    conditional = False
    content_only_after_first = False


@SPATIAL_QUERIES.register("detr_content")
class DETRContentQuery(DETRQuery):
    """DETR with key positions and object queries removed from cross-attention in layers 2… (paper §2e)."""

    label = "DETR (content only)"

    content_only_after_first = True


def incompatibility(csq: str, proj: str) -> str | None:
    """Why ``csq`` cannot be paired with ``proj``, naming both keys; None when the pair is a real model."""
    reason = SPATIAL_QUERIES.get(csq).incompatible_proj.get(proj)
    return f"csq={csq} with proj={proj}: {reason}" if reason else None
