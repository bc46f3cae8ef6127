"""Axis ``ref``: where the reference point s comes from (paper §4.3, "reference points").

Every class returns s already passed through the sigmoid, as (x, y) in [0, 1], shape (B, Q, 2).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ablate.models.heads import MLP, inverse_sigmoid
from ablate.registry import Registry

REFERENCE_POINTS: Registry[ReferencePoint] = Registry("ref")


class ReferencePoint(nn.Module):
    label: str  # how reports print this choice (result.json "labels")

    def __init__(self, d_model: int, num_queries: int):
        super().__init__()

    def reset_parameters(self) -> None:
        """The detector's init: Xavier on every matrix, as the authors do for the transformer (``ref_point_head``
        is part of it). Forms whose parameters are not weights of a layer override this."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, query_pos: Tensor) -> Tensor:
        raise NotImplementedError


@REFERENCE_POINTS.register("query")
class FromQuery(ReferencePoint):
    """s = sigmoid(FFN(o_q)): the default (the authors' ``ref_point_head``)."""

    label = "s = FFN(o_q)"

    def __init__(self, d_model: int, num_queries: int):
        super().__init__(d_model, num_queries)
        self.mlp = MLP(d_model, d_model, 2, 2)

    def forward(self, query_pos: Tensor) -> Tensor:
        return self.mlp(query_pos).sigmoid()


@REFERENCE_POINTS.register("learned")
class Learned(ReferencePoint):
    """s is a free 2-d parameter per query (pre-sigmoid), initialised uniformly over the image.

    Not a weight matrix: Xavier (bound √(6/(Q+2)), ±0.14 at Q = 300) would put every sigmoid(s) within 0.035 of
    the image centre, i.e. almost ``ref=zero``; the uniform spread is the point of this variant.
    """

    label = "s learned"

    def __init__(self, d_model: int, num_queries: int):
        super().__init__(d_model, num_queries)
        self.points = nn.Parameter(torch.empty(num_queries, 2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.points.copy_(inverse_sigmoid(torch.rand_like(self.points)))

    def forward(self, query_pos: Tensor) -> Tensor:
        return self.points.sigmoid().unsqueeze(0).expand(query_pos.shape[0], -1, -1)


@REFERENCE_POINTS.register("zero")
class Zero(ReferencePoint):
    """s = (0, 0) before the sigmoid: every query starts from the image centre, as in DETR."""

    label = "s = (0, 0)"

    def forward(self, query_pos: Tensor) -> Tensor:
        return query_pos.new_full((*query_pos.shape[:2], 2), 0.5)
