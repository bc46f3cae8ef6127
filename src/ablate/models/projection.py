"""Axis ``proj``: the form of the learned transformation T in p_q = T(f)·p_s (paper Fig. 5).

The free entries of T are predicted from a decoder embedding by an FFN (Linear → ReLU → Linear), as in the
paper; each class here knows how many entries it needs and how to apply them to a vector.
"""

from __future__ import annotations

from torch import Tensor, nn

from ablate.models.heads import MLP
from ablate.registry import Registry

PROJECTIONS: Registry[Projection] = Registry("proj")


class Projection(nn.Module):
    """``forward(x, v)`` returns T(x)·v for x, v of shape (..., d)."""

    label: str  # how reports print this choice (result.json "labels")

    def __init__(self, d_model: int, nheads: int):
        super().__init__()
        self.d_model, self.nheads = d_model, nheads
        n = self.entries(d_model, nheads)
        self.mlp = MLP(d_model, d_model, n, 2) if n else None

    @staticmethod
    def entries(d_model: int, nheads: int) -> int:
        """How many free entries of T the FFN predicts."""
        raise NotImplementedError

    @classmethod
    def num_parameters(cls, d_model: int, nheads: int) -> int:
        """Parameter count of the T-predicting FFN: (d·d + d) + (d·k + k) for k free entries, 0 for identity."""
        k = cls.entries(d_model, nheads)
        return 0 if k == 0 else d_model * d_model + d_model + d_model * k + k


@PROJECTIONS.register("identity")
class Identity(Projection):
    """T = I: nothing is learned."""

    label = "T = identity"

    @staticmethod
    def entries(d_model: int, nheads: int) -> int:
        return 0

    def forward(self, x: Tensor, v: Tensor) -> Tensor:
        return v


@PROJECTIONS.register("scalar")
class Scalar(Projection):
    """T = λ·I with one predicted scalar λ."""

    label = "T = scalar"

    @staticmethod
    def entries(d_model: int, nheads: int) -> int:
        return 1

    def forward(self, x: Tensor, v: Tensor) -> Tensor:
        return self.mlp(x) * v


@PROJECTIONS.register("block")
class BlockDiagonal(Projection):
    """T = diag(T_1 … T_M): M blocks of (d/M)×(d/M), the paper's "8 heads × 32×32" at d=256 (M = ``nheads``).

    Our reading, stated because the paper gives only the block count and size: T acts on p_s *before* the
    spatial projection (``ca_qpos_sine_proj``, a dense d×d linear map), so block i mixes the i-th 32-wide chunk
    of p_s — the sine embedding laid out y half then x half, frequency pairs in increasing order — i.e. one group
    of 16 frequencies of one coordinate. It is not per attention head: the dense projection after T spreads every
    chunk over all heads; only the number of blocks follows the head count.
    """

    label = "T = block"

    @staticmethod
    def entries(d_model: int, nheads: int) -> int:
        return d_model * d_model // nheads

    def forward(self, x: Tensor, v: Tensor) -> Tensor:
        m, dh = self.nheads, self.d_model // self.nheads
        blocks = self.mlp(x).unflatten(-1, (m, dh, dh))
        return (blocks @ v.unflatten(-1, (m, dh, 1))).flatten(-3)


@PROJECTIONS.register("full")
class Full(Projection):
    """A full d×d matrix T."""

    label = "T = full"

    @staticmethod
    def entries(d_model: int, nheads: int) -> int:
        return d_model * d_model

    def forward(self, x: Tensor, v: Tensor) -> Tensor:
        t = self.mlp(x).unflatten(-1, (self.d_model, self.d_model))
        return (t @ v.unsqueeze(-1)).squeeze(-1)


@PROJECTIONS.register("diagonal")
class Diagonal(Projection):
    """T = diag(λ_q): the paper's choice (the authors' ``query_scale``)."""

    label = "T = diagonal"

    @staticmethod
    def entries(d_model: int, nheads: int) -> int:
        return d_model

    def forward(self, x: Tensor, v: Tensor) -> Tensor:
        return self.mlp(x) * v
