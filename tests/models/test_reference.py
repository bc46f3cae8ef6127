"""The reference-point forms start where the paper's §4.3 variants say: ``learned`` spread over the image."""

import torch

from ablate.models.config import ModelConfig
from ablate.models.detector import build_detector


def _initial_points(ref: str, num_queries: int = 300) -> torch.Tensor:
    torch.manual_seed(0)
    model = build_detector(ModelConfig(num_queries=num_queries), csq="full", proj="diagonal", ref=ref, focal=True,
                           offset=True, num_classes=4)
    with torch.no_grad():
        return model.reference(model.query_embed.weight.unsqueeze(0))[0]  # (Q, 2) in [0, 1]


def test_learned_points_start_uniform_over_the_image():
    """The detector's Xavier init must not overwrite them (it squeezed all 300 into [0.465, 0.535])."""
    s = _initial_points("learned")
    assert s.shape == (300, 2)
    # U(0, 1): std 1/√12 ≈ 0.289 per coordinate, range ≈ [0.003, 0.997] over 300 draws
    assert (s.std(0) > 0.25).all(), s.std(0)
    assert (s.min(0).values < 0.05).all() and (s.max(0).values > 0.95).all(), (s.min(0), s.max(0))
    # a quarter of the points in each quadrant, give or take
    quadrants = torch.bincount((s[:, 0] > 0.5).long() * 2 + (s[:, 1] > 0.5).long(), minlength=4)
    assert (quadrants > 50).all(), quadrants


def test_zero_points_are_the_centre():
    """The contrast the ablation is about: DETR's s = (0, 0) before the sigmoid is the image centre."""
    assert torch.equal(_initial_points("zero"), torch.full((300, 2), 0.5))
