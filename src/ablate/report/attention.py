"""Attention maps drawn over the image, like the paper's Figure 4 (per head) and Figure 1 (two models).

Pure drawing from tensors: the caller runs the model and passes the maps. The decoder returns, per layer,
dict(spatial, content, combined) of shape (B, heads, Q, h, w); `maps_for_query` picks one image and query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from ablate.report import atomic
from ablate.report.figures import new_figure

DPI = 120
PANEL_IN = 2.0
KIND_ORDER = ("spatial", "content", "combined")
ROW_TITLES = {"spatial": "spatial\np_q·p_k", "content": "content\nc_q·c_k", "combined": "combined\nc_q·c_k + p_q·p_k"}
# A report hook: given the report folder, draws attention figures there and returns their paths.
AttentionFn = Callable[[Path], list[Path]]


def maps_for_query(layer_maps: Mapping[str, torch.Tensor], image: int = 0, query: int = 0) -> dict[str, torch.Tensor]:
    """(B, heads, Q, h, w) maps of one decoder layer -> (heads, h, w) maps of one image and one query."""
    return {kind: m[image, :, query].detach() for kind, m in layer_maps.items()}


def draw_attention(image: torch.Tensor, boxes_xyxy: torch.Tensor, maps: Mapping[str, torch.Tensor], path: Path,
                   title: str | None = None, *, alpha: float = 0.55, cmap: str = "jet") -> Path:
    """Grid with one row per map kind and one column per head: each map upsampled to the image, overlaid on it
    with `alpha`, the GT boxes (pixels, x0 y0 x1 y1) in green on every panel. Writes a PNG to `path`."""
    kinds = [k for k in KIND_ORDER if k in maps] + [k for k in maps if k not in KIND_ORDER]
    rows = {ROW_TITLES.get(k, k): maps[k] for k in kinds}
    return _draw_grid(image, boxes_xyxy, rows, path, title or "Decoder cross-attention per head",
                      alpha=alpha, cmap=cmap)


def draw_attention_comparison(image: torch.Tensor, box: torch.Tensor, rows: Mapping[str, torch.Tensor], path: Path,
                              title: str | None = None, *, alpha: float = 0.55, cmap: str = "jet") -> Path:
    """One row per model (label -> (heads, h, w) spatial maps), one column per head, like the paper's Figure 1."""
    return _draw_grid(image, box, dict(rows), path, title or "Spatial attention maps: model comparison",
                      alpha=alpha, cmap=cmap)


def _draw_grid(image: torch.Tensor, boxes: torch.Tensor, rows: dict[str, torch.Tensor], path: Path, title: str,
               *, alpha: float, cmap: str) -> Path:
    picture = _image_hwc(image)
    height, width = picture.shape[:2]
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    n_heads = max(int(torch.as_tensor(m).shape[0]) for m in rows.values())
    fig = new_figure(PANEL_IN * n_heads + 1.2, PANEL_IN * height / width * len(rows) + 0.6)
    axes = fig.subplots(len(rows), n_heads, squeeze=False)
    for r, (label, maps) in enumerate(rows.items()):
        upsampled = _upsample(torch.as_tensor(maps), height, width)
        for h in range(n_heads):
            ax = axes[r][h]
            # extent in pixel-edge coordinates, so boxes in pixels (COCO style) land exactly on the image
            ax.imshow(picture, extent=(0, width, height, 0))
            if h < len(upsampled):
                ax.imshow(upsampled[h], cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0, extent=(0, width, height, 0))
            _draw_boxes(ax, boxes)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"head {h}", fontsize=9)
        axes[r][0].set_ylabel(label, fontsize=9)
    fig.suptitle(f"{title}\n(softmax attention over the feature map, each scaled to its own maximum; "
                 "green: ground-truth box)", fontsize=10)
    return atomic.save_figure(fig, Path(path), dpi=DPI)


def _image_hwc(image: torch.Tensor) -> np.ndarray:
    tensor = torch.as_tensor(image).detach().cpu()
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    return tensor.float().clamp(0, 1).permute(1, 2, 0).numpy()


def _upsample(maps: torch.Tensor, height: int, width: int) -> np.ndarray:
    maps = maps.detach().cpu().float()
    big = F.interpolate(maps[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    # Per-map min-max scaling: softmax maps over hundreds of tokens have tiny absolute values.
    low = big.amin(dim=(1, 2), keepdim=True)
    high = big.amax(dim=(1, 2), keepdim=True)
    return ((big - low) / (high - low).clamp_min(1e-12)).numpy()


def _draw_boxes(ax: Axes, boxes: Sequence[torch.Tensor]) -> None:
    for x0, y0, x1, y1 in (b.tolist() for b in boxes):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=2))
