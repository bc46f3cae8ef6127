import math

import torch

from ablate.models.position_encoding import PositionEmbeddingSine, sine_embed_points


def test_reference_point_sine_values_from_the_spec():
    """reference_spec §4.3: for (x, y) = (0.25, 0.75), p_s[0:4] and p_s[128:132]."""
    p = sine_embed_points(torch.tensor([[0.25, 0.75]]))[0]
    torch.testing.assert_close(p[:4], torch.tensor([-1.0, 0.0, -0.807067, -0.590459]), atol=1e-5, rtol=0)
    torch.testing.assert_close(p[128:132], torch.tensor([1.0, 0.0, 0.977918, 0.208991]), atol=1e-5, rtol=0)


def test_sine_layout_by_hand():
    """Pair i holds (sin, cos) of 2π·c / T^(2i/n); the y half comes first."""
    n = 8
    p = sine_embed_points(torch.tensor([0.1, 0.6]), num_feats=n)
    for half, c in ((0, 0.6), (1, 0.1)):
        for i in range(n // 2):
            a = 2 * math.pi * c / 10000 ** (2 * i / n)
            assert math.isclose(p[half * n + 2 * i], math.sin(a), abs_tol=1e-6)
            assert math.isclose(p[half * n + 2 * i + 1], math.cos(a), abs_tol=1e-6)


def test_key_embedding_ignores_padding():
    """Padding at the right/bottom never moves the positions of real cells."""
    pe = PositionEmbeddingSine(8)
    small = pe(torch.zeros(1, 3, 4, dtype=torch.bool))
    mask = torch.ones(1, 5, 6, dtype=torch.bool)
    mask[:, :3, :4] = False
    padded = pe(mask)
    torch.testing.assert_close(padded[:, :, :3, :4], small)
    # the first cell's coordinate is 1/n of the valid extent (1-based cumsum), times 2π
    assert math.isclose(float(small[0, 8, 0, 0]), math.sin(2 * math.pi * 1 / 4), abs_tol=1e-5)
