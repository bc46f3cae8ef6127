import matplotlib.image as mpimg
import numpy as np
import torch

from ablate.report.attention import DPI, PANEL_IN, draw_attention, draw_attention_comparison, maps_for_query


def test_draw_attention_grid(tmp_path):
    h, w, heads = 64, 96, 5
    image = torch.rand(3, h, w)
    boxes = torch.tensor([[10.0, 8.0, 60.0, 50.0]])
    layer = {kind: torch.rand(2, heads, 7, 4, 6).softmax(-1) for kind in ("combined", "spatial", "content")}
    maps = maps_for_query(layer, image=1, query=3)
    assert maps["spatial"].shape == (heads, 4, 6)
    path = draw_attention(image, boxes, maps, tmp_path / "attention.png", title="test")
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (round((PANEL_IN * h / w * 3 + 0.6) * DPI), round((PANEL_IN * heads + 1.2) * DPI))
    assert np.std(pixels[..., :3]) > 0.05
    # the green box is drawn
    green = (pixels[..., 1] > 0.8) & (pixels[..., 0] < 0.3) & (pixels[..., 2] < 0.3)
    assert green.sum() > 100


def test_draw_attention_comparison_uint8(tmp_path):
    image = (torch.rand(3, 48, 48) * 255).to(torch.uint8)
    rows = {"Conditional DETR": torch.rand(4, 3, 3), "DETR": torch.rand(4, 3, 3)}
    path = draw_attention_comparison(image, torch.tensor([5.0, 5.0, 40.0, 30.0]), rows, tmp_path / "cmp.png")
    assert mpimg.imread(path).shape[:2] == (round((PANEL_IN * 2 + 0.6) * DPI), round((PANEL_IN * 4 + 1.2) * DPI))
