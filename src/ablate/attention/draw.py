"""Attention maps over the image, like the paper's Figure 4 (per head) and Figure 1 (two models side by side).

Pure drawing from arrays (numpy, or anything `np.asarray` takes): each (h, w) map is scaled to its own maximum
and drawn with a perceptually uniform colour map over a grey copy of the image, with one colour bar; the
ground-truth box is solid white, the predicted box dashed red.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ablate.runs.atomic import commit_temp, write_temp

DPI = 120
PANEL_IN = 2.0
CMAP = "viridis"  # perceptually uniform, readable in grey print
KIND_ORDER = ("spatial", "content", "combined")
ROW_TITLES = {"spatial": "spatial\np_q·p_k", "content": "content\nc_q·c_k", "combined": "combined\nc_q·c_k + p_q·p_k"}
GT_STYLE = {"edgecolor": "white", "linewidth": 2.0, "linestyle": "-"}
PRED_STYLE = {"edgecolor": "red", "linewidth": 2.0, "linestyle": "--"}


def draw_attention(image: Any, gt_box: Any, maps: Mapping[str, Any], path: Path, title: str | None = None,
                   pred_box: Any = None) -> Path:
    """Grid with one row per map kind (spatial, content, combined) and one column per head. `image` is
    (3, H, W) or (H, W, 3) in [0, 1] or uint8; boxes are pixels x0 y0 x1 y1. Writes a PNG to `path`."""
    kinds = [k for k in KIND_ORDER if k in maps] + [k for k in maps if k not in KIND_ORDER]
    rows = {ROW_TITLES.get(k, k): (maps[k], pred_box) for k in kinds}
    return _draw_grid(image, gt_box, rows, path, title or "Decoder cross-attention per head")


def draw_attention_comparison(image: Any, gt_box: Any, rows: Mapping[str, Any], path: Path,
                              title: str | None = None, pred_boxes: Mapping[str, Any] | None = None) -> Path:
    """One row per model (label -> (heads, h, w) spatial maps), one column per head, like the paper's Figure 1;
    `pred_boxes` (label -> box) draws each model's own prediction."""
    pred_boxes = pred_boxes or {}
    grid = {label: (maps, pred_boxes.get(label)) for label, maps in rows.items()}
    return _draw_grid(image, gt_box, grid, path, title or "Spatial attention maps: model comparison")


def _draw_grid(image: Any, gt_box: Any, rows: dict[str, tuple[Any, Any]], path: Path, title: str) -> Path:
    picture = image_hwc(image)
    grey = picture.mean(axis=2)
    height, width = grey.shape
    n_heads = max(np.asarray(m).shape[0] for m, _ in rows.values())
    # pyplot-free: headless, no global backend switch, nothing to close
    fig = Figure(figsize=(PANEL_IN * n_heads + 1.2, PANEL_IN * height / width * len(rows) + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), n_heads, squeeze=False)
    extent = (0, width, height, 0)  # pixel-edge coordinates, so COCO-style pixel boxes land exactly
    for r, (label, (maps, pred)) in enumerate(rows.items()):
        scaled = _scaled(np.asarray(maps, dtype=float))
        for h in range(n_heads):
            ax = axes[r][h]
            ax.imshow(grey, cmap="gray", extent=extent, vmin=0, vmax=1)
            if h < len(scaled):
                ax.imshow(scaled[h], cmap=CMAP, alpha=0.6, vmin=0.0, vmax=1.0, extent=extent,
                          interpolation="bilinear")
            _box(ax, gt_box, GT_STYLE)
            if pred is not None:
                _box(ax, pred, PRED_STYLE)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"head {h + 1}", fontsize=9)
        # long variant names wrap, so a row label never runs into the next row's
        axes[r][0].set_ylabel("\n".join(textwrap.fill(line, 26) for line in label.split("\n")), fontsize=8)
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap=CMAP), ax=axes, shrink=0.8, pad=0.02)
    bar.set_label("attention / its map's maximum", fontsize=8)
    fig.suptitle(f"{title}\n(softmax attention over the feature map; white: ground truth, dashed red: prediction)",
                 fontsize=10)
    path = Path(path)
    # the temp name ends in .tmp, so the format is given explicitly
    commit_temp(write_temp(path, lambda f: fig.savefig(f, format="png", dpi=DPI)), path)
    return path


def image_hwc(image: Any) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] from (3, H, W) or (H, W, 3), float or uint8."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    array = array.astype(float) / 255.0 if array.dtype == np.uint8 else array.astype(float)
    return array.clip(0, 1)


def _scaled(maps: np.ndarray) -> np.ndarray:
    # Per-map min-max scaling: softmax maps over hundreds of tokens have tiny absolute values.
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    return (maps - low) / np.maximum(high - low, 1e-12)


def _box(ax: Axes, box: Any, style: dict[str, Any]) -> None:
    for x0, y0, x1, y1 in np.asarray(box, dtype=float).reshape(-1, 4):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, **style))
