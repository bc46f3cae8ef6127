"""p_q of every csq × proj form against a hand computation on a 2-head, d = 4 toy."""

import pytest
import torch

from ablate.models.projection import PROJECTIONS, Projection
from ablate.models.spatial_query import SPATIAL_QUERIES

D, M = 4, 2
f = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
c_q = torch.tensor([[0.2, 0.1, -1.0, 2.0]])
p_s = torch.tensor([[0.5, -1.0, 2.0, 0.25]])


def entries(x: torch.Tensor, k: int) -> torch.Tensor:
    """A fixed, hand-checkable 'FFN': the free entries of T are 1 + 0.1·i + x₀ for i = 0 … k−1."""
    return 1.0 + 0.1 * torch.arange(k, dtype=torch.float32) + x[..., :1]


def make(proj: str) -> Projection:
    p = PROJECTIONS.get(proj)(D, M)
    if p.mlp is not None:
        k = p.entries(D, M)
        p.mlp.forward = lambda x: entries(x, k)
    return p


def t_matrix(proj: str, x: torch.Tensor) -> torch.Tensor:
    """T(x) written out as a dense d × d matrix, by hand."""
    if proj == "identity":
        return torch.eye(D)
    if proj == "scalar":
        return entries(x, 1)[0, 0] * torch.eye(D)
    if proj == "diagonal":
        return torch.diag(entries(x, D)[0])
    if proj == "full":
        return entries(x, D * D)[0].view(D, D)
    blocks = entries(x, D * D // M)[0].view(M, D // M, D // M)  # block: one 2×2 block per d/M-wide chunk
    return torch.block_diag(*blocks)


@pytest.mark.parametrize("proj", PROJECTIONS.names())
@pytest.mark.parametrize("csq", ["full", "C", "T", "P", "I"])
def test_spatial_query_by_hand(csq, proj):
    sq = SPATIAL_QUERIES.get(csq)(make(proj) if SPATIAL_QUERIES.get(csq).uses_proj else None)
    got = sq(f=f, c_q=c_q, p_s=p_s)
    expected = {
        "full": (t_matrix(proj, f) @ p_s[0])[None],
        "C": f,
        "T": (t_matrix(proj, f) @ torch.ones(D))[None],
        "P": p_s,
        "I": (t_matrix(proj, c_q) @ p_s[0])[None],
    }[csq]
    torch.testing.assert_close(got, expected)


def test_block_never_mixes_chunks_of_p_s():
    """A block-diagonal T never mixes different d/M-wide chunks of p_s (frequency groups, before the projection)."""
    p = make("block")
    v = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert p(f, v)[0, 2:].abs().max() == 0


@pytest.mark.parametrize("proj,k", [("identity", 0), ("scalar", 1), ("block", 256 * 256 // 8), ("full", 256 * 256),
                                    ("diagonal", 256)])
def test_t_parameter_count(proj, k):
    module = PROJECTIONS.get(proj)(256, 8)
    n = sum(p.numel() for p in module.parameters())
    assert n == (0 if k == 0 else (256 * 256 + 256) + (256 * k + k))
    assert n == PROJECTIONS.get(proj).num_parameters(256, 8)
    if proj == "diagonal":  # the authors' query_scale
        assert n == 131_584


def test_unknown_choice_names_the_valid_ones():
    with pytest.raises(KeyError, match="valid choices: full, C, T, P, I, detr, detr_content"):
        SPATIAL_QUERIES.get("X")
