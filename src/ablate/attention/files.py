"""The attention files of a job folder: ``attention/index.json`` lists, per drawn validation image, its figure
(PNG) and the maps behind it (NPZ: picture, boxes, per-head maps), so other figures can be drawn from files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ablate.runs.atomic import atomic_write_json, commit_temp, write_temp

FOLDER = "attention"
INDEX = "index.json"
KINDS = ("spatial", "content", "combined")


def index_path(job_dir: Path) -> Path:
    return Path(job_dir) / FOLDER / INDEX


def read_index(job_dir: Path) -> dict[str, Any] | None:
    """The job's attention index, or None when it has none or it cannot be read."""
    try:
        index = json.loads(index_path(job_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return index if isinstance(index, dict) and isinstance(index.get("images"), list) else None


def find_image(job_dir: Path, image: int) -> dict[str, Any] | None:
    """The index entry of one validation image (paths made absolute), or None."""
    index = read_index(job_dir) or {"images": []}
    for entry in index["images"]:
        if isinstance(entry, dict) and entry.get("image") == image:
            folder = Path(job_dir) / FOLDER
            return {**index, **entry, "png": folder / entry["png"], "maps": folder / entry["maps"]}
    return None


def add_image(job_dir: Path, header: dict[str, Any], entry: dict[str, Any]) -> Path:
    """Add or replace one image's entry (``image``, ``png``, ``maps`` relative to the folder, ...); write atomically."""
    index = read_index(job_dir) or {"images": []}
    images = [e for e in index["images"] if e.get("image") != entry["image"]] + [entry]
    path = index_path(job_dir)
    atomic_write_json(path, {**index, **header, "images": sorted(images, key=lambda e: e["image"])})
    return path


def save_maps(path: Path, **arrays: np.ndarray) -> Path:
    """Write arrays to an NPZ file atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    commit_temp(write_temp(path, lambda f: f.write(buffer.getvalue())), path)
    return path


def load_maps(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a maps file (no pickles: plain arrays only)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
