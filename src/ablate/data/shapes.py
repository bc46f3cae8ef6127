"""A synthetic COCO-format detection set that trains in minutes on a CPU.

Five shape classes that differ by outline (so they are easy to tell apart), boxes with free sizes and aspect
ratios, partial overlaps and truncation at the image border, so a box's extremities are not implied by its
centre: that is the information Conditional DETR's spatial queries are built to find.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from .config import ShapesConfig

# Bump whenever the drawing code changes, so old caches are not reused.
GENERATOR_VERSION = 1
CATEGORIES = ["rectangle", "ellipse", "triangle", "cross", "ring"]  # category id = index + 1
MAX_IOU = 0.3  # between any two boxes of an image (full and visible)
MIN_VISIBLE = 0.5  # fraction of an object's pixels that must stay visible (occlusion and border)
MAX_OUTSIDE = 0.25  # fraction of a box side that may lie outside the image
JPEG_QUALITY = 95
_PROGRESS_FROM = 500  # images; below this a progress bar is noise
_STALE_TMP_S = 3600  # a temporary folder older than this is a killed run's leftover


@dataclass(frozen=True)
class ShapesPaths:
    train_images: Path
    val_images: Path
    train_ann: Path
    val_ann: Path


def as_shapes_config(cfg: Any) -> ShapesConfig:
    """A ``ShapesConfig`` from itself, a dict or an OmegaConf node, with numbers coerced to the field types.

    Coercion keeps the hash stable when YAML says ``noise: 8`` instead of ``8.0``.
    """
    values = asdict(cfg) if isinstance(cfg, ShapesConfig) else cfg
    cast = {"int": int, "float": float}
    return ShapesConfig(
        **{f.name: cast[str(f.type)](values[f.name]) for f in fields(ShapesConfig) if f.name in values}
    )


def shapes_hash(cfg: ShapesConfig) -> str:
    """8 hex digits over every config field and the generator version."""
    cfg = as_shapes_config(cfg)
    payload = json.dumps({"version": GENERATOR_VERSION, **asdict(cfg)}, sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:8]


def generate_shapes(root: Path, cfg: ShapesConfig) -> ShapesPaths:
    """Return the paths of the shapes set under ``root``, generating it first if no valid copy exists.

    Generation writes a temporary sibling folder and renames it into place, so a killed run never leaves a
    folder that looks complete, and of two racing processes the loser simply adopts the winner's folder.
    """
    cfg = as_shapes_config(cfg)
    _check_config(cfg)
    root = Path(root)
    digest = shapes_hash(cfg)
    final = root / f"shapes-{digest}"
    if _is_complete(final, digest, cfg):
        return _paths(final)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(root, digest)
    tmp = root / f".shapes-{digest}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_dataset(tmp, cfg, digest)
        _publish(tmp, final, digest, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _paths(final)


def _check_config(cfg: ShapesConfig) -> None:
    if not 1 <= cfg.min_objects <= cfg.max_objects:
        raise ValueError(
            f"shapes: need 1 <= min_objects <= max_objects, got {cfg.min_objects}, {cfg.max_objects}"
        )
    if not 4 <= cfg.min_size <= cfg.max_size <= cfg.image_size:
        raise ValueError(
            f"shapes: need 4 <= min_size <= max_size <= image_size, got {cfg.min_size}, {cfg.max_size}, "
            f"{cfg.image_size}"
        )
    if cfg.num_train < 1 or cfg.num_val < 1:
        raise ValueError(f"shapes: need num_train, num_val >= 1, got {cfg.num_train}, {cfg.num_val}")


def _paths(folder: Path) -> ShapesPaths:
    return ShapesPaths(
        train_images=folder / "train",
        val_images=folder / "val",
        train_ann=folder / "annotations" / "instances_train.json",
        val_ann=folder / "annotations" / "instances_val.json",
    )


def _is_complete(folder: Path, digest: str, cfg: ShapesConfig) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("hash") != digest:
        return False
    paths = _paths(folder)
    if not (paths.train_ann.is_file() and paths.val_ann.is_file()):
        return False
    # Counting directory entries is cheap and catches a folder someone pruned by hand.
    for images, expected in ((paths.train_images, cfg.num_train), (paths.val_images, cfg.num_val)):
        try:
            if sum(1 for _ in os.scandir(images)) != expected:
                return False
        except OSError:
            return False
    return True


def _remove_stale_tmp(root: Path, digest: str) -> None:
    now = time.time()
    for leftover in root.glob(f".shapes-{digest}.*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def _publish(tmp: Path, final: Path, digest: str, cfg: ShapesConfig) -> None:
    """Rename ``tmp`` to ``final``; an invalid ``final`` is moved aside, a valid one (a racing winner) kept."""
    for _ in range(3):
        try:
            os.replace(tmp, final)
            return
        except OSError:
            if _is_complete(final, digest, cfg):
                return
        # An incomplete folder under the final name (hand-edited or foreign): move it aside, then retry.
        trash = final.with_name(f".{final.name}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(final, trash)
        except OSError:
            pass
        shutil.rmtree(trash, ignore_errors=True)
    raise OSError(f"could not move the generated shapes set {tmp} into place at {final}")


def _write_dataset(folder: Path, cfg: ShapesConfig, digest: str) -> None:
    (folder / "annotations").mkdir(parents=True)
    total = cfg.num_train + cfg.num_val
    with tqdm(total=total, desc=f"generating shapes-{digest}", disable=total < _PROGRESS_FROM) as bar:
        for split, count, stream in (("train", cfg.num_train, 0), ("val", cfg.num_val, 1)):
            coco = _write_split(folder / split, cfg, count, stream, bar)
            # Compact JSON: the train file is read at every start.
            (folder / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    manifest = {"hash": digest, "version": GENERATOR_VERSION, "config": asdict(cfg)}
    # Written last: its presence (with the right hash) is what marks the folder complete.
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _write_split(folder: Path, cfg: ShapesConfig, count: int, stream: int, bar: tqdm) -> dict:
    folder.mkdir(parents=True)
    images, annotations = [], []
    for index in range(count):
        # One generator per image (seed, split, index): train and val never share a stream, and changing
        # num_train leaves the first images as they were.
        rng = np.random.default_rng([cfg.seed, stream, index])
        pixels, objects = render_image(rng, cfg)
        image_id = index + 1
        file_name = f"{image_id:06d}.jpg"
        Image.fromarray(pixels).save(folder / file_name, quality=JPEG_QUALITY)
        images.append(
            {"id": image_id, "file_name": file_name, "width": cfg.image_size, "height": cfg.image_size}
        )
        for category_id, bbox, area in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": bbox,
                    "area": area,
                    "iscrowd": 0,
                }
            )
        bar.update(1)
    return {
        "info": {
            "description": f"ablate synthetic shapes ({folder.name})",
            "version": str(GENERATOR_VERSION),
            "year": 2026,
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CATEGORIES)
        ],
    }


def render_image(
    rng: np.random.Generator, cfg: ShapesConfig
) -> tuple[np.ndarray, list[tuple[int, list, float]]]:
    """Draw one image; returns uint8 (H, W, 3) pixels and (category_id, visible xywh box, visible area).

    Objects are placed one on top of the other; a placement is rejected when it would hide more than
    ``1 - MIN_VISIBLE`` of an object below, or bring two visible (tight) boxes above ``MAX_IOU``.
    """
    size = cfg.image_size
    background, bg_colour = _background(rng, size)
    owner = np.full((size, size), -1, dtype=np.int16)  # which object each pixel shows, -1 = background
    pixel_counts: list[int] = []  # each object's pixel count inside the image when drawn
    boxes: list[tuple[int, int, int, int]] = []  # visible tight boxes, xyxy
    categories: list[int] = []
    colours: list[np.ndarray] = []
    wanted = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    for _ in range(wanted * 30):  # placement attempts; a crowded image just gets fewer objects
        if len(boxes) == wanted:
            break
        category = int(rng.integers(len(CATEGORIES)))
        w, h = _object_size(rng, cfg)
        x0 = int(rng.integers(-int(MAX_OUTSIDE * w), size - w + int(MAX_OUTSIDE * w) + 1))
        y0 = int(rng.integers(-int(MAX_OUTSIDE * h), size - h + int(MAX_OUTSIDE * h) + 1))
        if any(_iou((x0, y0, x0 + w, y0 + h), other) > MAX_IOU for other in boxes):
            continue  # cheap early rejection on the full box
        mask = _shape_mask(rng, category, w, h)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, size), min(y0 + h, size)
        inside = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]  # the part within the image
        if inside.sum() < MIN_VISIBLE * mask.sum():
            continue
        trial = owner.copy()
        trial[cy0:cy1, cx0:cx1][inside] = len(boxes)
        trial_boxes = boxes + [_tight_box(trial == len(boxes))]
        affected = np.unique(owner[cy0:cy1, cx0:cx1][inside])
        hidden_too_much = False
        for k in affected[affected >= 0]:
            visible = trial == k
            if visible.sum() < MIN_VISIBLE * pixel_counts[k]:
                hidden_too_much = True
                break
            trial_boxes[k] = _tight_box(visible)
        if hidden_too_much or any(
            _iou(a, b) > MAX_IOU for i, a in enumerate(trial_boxes) for b in trial_boxes[i + 1 :]
        ):
            continue
        owner, boxes = trial, trial_boxes
        categories.append(category + 1)
        pixel_counts.append(int(inside.sum()))
        colours.append(_object_colour(rng, bg_colour, colours))
    pixels = background
    objects = []
    for k, (category_id, colour, box) in enumerate(zip(categories, colours, boxes)):
        visible = owner == k
        pixels[visible] = colour
        x1, y1, x2, y2 = box
        objects.append(
            (category_id, [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], float(visible.sum()))
        )
    if cfg.noise > 0:
        pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(cfg.noise)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8), objects


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """xyxy pixel-edge box of the True pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    image = np.broadcast_to(colour, (size, size, 3)).astype(np.float32)
    if rng.random() < 0.5:  # a gentle linear gradient in a random direction
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * np.arange(size)[None, :] + np.sin(angle) * np.arange(size)[:, None]) / size
        image = image + (ramp - ramp.mean())[..., None] * rng.uniform(-40, 40, 3).astype(np.float32)
    return image, colour


def _object_colour(rng: np.random.Generator, background: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
    """A colour far from the background (and from the other objects, so overlaps keep their edges)."""
    colour = 255.0 - background  # fallback: the complement is always far from the background
    for _ in range(50):
        candidate = rng.uniform(0, 255, 3).astype(np.float32)
        if np.linalg.norm(candidate - background) >= 100 and all(
            np.linalg.norm(candidate - other) >= 50 for other in others
        ):
            colour = candidate
            break
    return colour


def _object_size(rng: np.random.Generator, cfg: ShapesConfig) -> tuple[int, int]:
    """Width and height, each log-uniform in [min_size, max_size], aspect ratio within 1:3..3:1."""
    low, high = np.log(cfg.min_size), np.log(cfg.max_size + 1)
    while True:
        w, h = np.exp(rng.uniform(low, high, 2)).astype(int)
        w, h = min(int(w), cfg.max_size), min(int(h), cfg.max_size)
        if max(w, h) <= 3 * min(w, h):
            return w, h


def _shape_mask(rng: np.random.Generator, category: int, w: int, h: int) -> np.ndarray:
    """Boolean (h, w) mask of one shape whose tight box is the full (w, h) box."""
    # Pixel centres in [0, 1] box coordinates.
    u = ((np.arange(w) + 0.5) / w)[None, :]
    v = ((np.arange(h) + 0.5) / h)[:, None]
    name = CATEGORIES[category]
    if name == "rectangle":
        return np.ones((h, w), dtype=bool)
    if name in ("ellipse", "ring"):
        outer = (2 * u - 1) ** 2 + (2 * v - 1) ** 2 <= 1
        if name == "ellipse":
            return outer
        # Thickness in pixels (not a fraction of each axis) so it reads as a band of even width.
        thickness = max(2.0, rng.uniform(0.2, 0.35) * min(w, h))
        a, b = w / 2 - thickness, h / 2 - thickness
        if a <= 0 or b <= 0:
            return outer
        hole = ((u - 0.5) * w / a) ** 2 + ((v - 0.5) * h / b) ** 2 < 1
        return outer & ~hole
    if name == "triangle":
        # Base along one side, apex anywhere on the opposite side: the centre of mass says little about
        # where the box ends.
        apex = rng.uniform(0, 1)
        side = int(rng.integers(4))
        uu, vv = np.broadcast_arrays(u, v)
        along, across = (uu, vv) if side in (0, 1) else (vv, uu)
        if side in (1, 3):
            across = 1 - across
        return (along >= apex * (1 - across)) & (along <= apex + (1 - apex) * across)
    # cross: two full-length bars, crossing off-centre.
    bar_w, bar_h = rng.uniform(0.25, 0.4, 2)
    cu, cv = rng.uniform(0.35, 0.65, 2)
    return (np.abs(u - cu) <= bar_w / 2) | (np.abs(v - cv) <= bar_h / 2)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
