"""Data settings that are well-typed but cannot work, found before anything runs; each names the key."""

from __future__ import annotations

from typing import Any

RESOLUTIONS = ("fixed", "auto")
COCO_PATHS = ("train_images", "val_images", "train_ann", "val_ann")


def data_config_problem(cfg: Any) -> str | None:
    """The first impossible ``data.*`` value of ``cfg`` (the ``data`` node), said in one line; else None."""
    if cfg.num_workers < 0:
        return f"data.num_workers={cfg.num_workers} must be ≥ 0 (0: load in the training process)"
    if cfg.resolution not in RESOLUTIONS:
        return f"data.resolution={cfg.resolution!r} is not one of: {', '.join(RESOLUTIONS)}"
    if cfg.max_category_id is not None and cfg.max_category_id < 0:
        return f"data.max_category_id={cfg.max_category_id} must be ≥ 0 (or null for the default bound)"
    if cfg.crop:
        scales = list(cfg.crop_scales)
        if not scales or min(scales) < 1:
            return f"data.crop_scales={scales} needs at least one size ≥ 1 when data.crop=true"
        if not 1 <= cfg.crop_min <= cfg.crop_max:
            return f"data.crop_min={cfg.crop_min}, data.crop_max={cfg.crop_max}: need 1 ≤ crop_min ≤ crop_max"
    if cfg.name == "shapes":
        return _shapes_problem(cfg.shapes)
    if cfg.name == "coco" and not cfg.root:
        missing = [f"data.{key}" for key in COCO_PATHS if not cfg[key]]
        if missing:
            return ("data=coco needs data.root=DIR (a folder in COCO-2017 layout) or all four of "
                    f"data.{', data.'.join(COCO_PATHS)}; missing: {', '.join(missing)}")
    return None


def _shapes_problem(s: Any) -> str | None:
    for key in ("num_train", "num_val", "min_objects"):
        if s[key] < 1:
            return f"data.shapes.{key}={s[key]} must be ≥ 1"
    if s.max_objects < s.min_objects:
        return f"data.shapes.max_objects={s.max_objects} must be ≥ data.shapes.min_objects={s.min_objects}"
    if not 4 <= s.min_size <= s.max_size <= s.image_size:
        return (f"data.shapes: need 4 ≤ min_size ≤ max_size ≤ image_size, got {s.min_size}, {s.max_size}, "
                f"{s.image_size}")
    if not s.noise >= 0:
        return f"data.shapes.noise={s.noise} must be ≥ 0"
    return None
