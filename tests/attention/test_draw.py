import matplotlib.image as mpimg
import numpy as np
import torch

from ablate.attention.draw import DPI, PANEL_IN, draw_attention, draw_attention_comparison
from ablate.attention.run import maps_for_query


def white(pixels):
    return (pixels[..., :3] > 0.97).all(axis=-1)


def test_draw_attention_grid(tmp_path):
    h, w, heads = 64, 96, 5
    image = torch.rand(3, h, w) * 0.5  # darker than the white GT box
    layer = {kind: torch.rand(2, heads, 7, 4, 6).softmax(-1) for kind in ("combined", "spatial", "content")}
    maps = maps_for_query(layer, image=1, query=3)
    assert maps["spatial"].shape == (heads, 4, 6)
    path = draw_attention(image, torch.tensor([[10.0, 8.0, 60.0, 50.0]]), maps, tmp_path / "attention.png",
                          title="test", pred_box=np.array([20.0, 20.0, 70.0, 60.0]))
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (round((PANEL_IN * h / w * 3 + 0.9) * DPI), round((PANEL_IN * heads + 1.2) * DPI))
    assert np.std(pixels[..., :3]) > 0.05
    # the GT box is drawn (white), the prediction (red, dashed)
    red = (pixels[..., 0] > 0.8) & (pixels[..., 1] < 0.2) & (pixels[..., 2] < 0.2)
    assert white(pixels).sum() > 100 and red.sum() > 100


def test_draw_attention_comparison_uint8(tmp_path):
    image = (np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)
    rows = {"Conditional DETR": np.random.rand(4, 3, 3), "DETR": np.random.rand(4, 3, 3)}
    path = draw_attention_comparison(image, np.array([5.0, 5.0, 40.0, 30.0]), rows, tmp_path / "cmp.png")
    assert mpimg.imread(path).shape[:2] == (round((PANEL_IN * 2 + 0.9) * DPI), round((PANEL_IN * 4 + 1.2) * DPI))
