"""Input sizes that follow the model and the data (``data.resolution``).

``fixed`` keeps the data preset's sizes (the paper's 480–800 / 1333 for COCO, 96–144 / 192 for shapes).
``auto`` reads those sizes relative to ``val_size`` and rescales them so the validation short side is the
training images' median short side, capped by the model preset's ``model.max_resolution``: the laptop model
trains a folder of 128-px images at about 128 px instead of upscaling them to 800, and a model without a cap
(``model=r50*``/``r101*``) keeps the preset's sizes.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

SIZE_KEYS = ("train_scales", "max_size", "val_size", "crop_scales", "crop_min", "crop_max")


def fit_sizes(cfg: Any, image_sizes: np.ndarray, max_resolution: int | None) -> Any:
    """A copy of the data config ``cfg`` with the sizes ``data.resolution`` asks for.

    ``image_sizes`` is the training set's (N, 2) array of (height, width).
    """
    if cfg.resolution != "auto" or max_resolution is None:
        return cfg
    median = int(np.median(image_sizes.min(axis=1))) if len(image_sizes) else cfg.val_size
    target = max(1, min(median, int(max_resolution)))
    factor = target / cfg.val_size

    def scale(value: int) -> int:
        return max(1, round(value * factor))

    out = copy.deepcopy(cfg)
    if isinstance(out, DictConfig):
        OmegaConf.set_readonly(out, False)
    out.train_scales = sorted({scale(v) for v in cfg.train_scales})
    out.crop_scales = sorted({scale(v) for v in cfg.crop_scales})
    out.max_size, out.val_size = scale(cfg.max_size), target
    out.crop_min, out.crop_max = scale(cfg.crop_min), scale(cfg.crop_max)
    return out


def describe_sizes(cfg: Any, image_sizes: np.ndarray, max_resolution: int | None) -> str:
    """One line for the log: the sizes used and why."""
    scales = list(cfg.train_scales)
    train = f"{scales[0]}–{scales[-1]}" if len(scales) > 1 else f"{scales[0]}"
    crop = f", crop branch {cfg.crop_min}–{cfg.crop_max} px" if cfg.crop else ""
    why = f"data.resolution={cfg.resolution}"
    if cfg.resolution == "auto":
        median = int(np.median(image_sizes.min(axis=1))) if len(image_sizes) else None
        cap = f"model.max_resolution={max_resolution}" if max_resolution is not None else "no model cap: preset sizes"
        why += f": median training short side {median} px, {cap}"
    return (f"input sizes: train short side {train} px, long side ≤ {cfg.max_size} px, val short side "
            f"{cfg.val_size} px{crop} ({why})")
