"""Read a COCO detection annotation file and check its schema, failing with the file and entry named."""

from __future__ import annotations

import json
import math
import ntpath
import posixpath
from pathlib import Path
from typing import Any

from .errors import DataError

_LISTS = ("images", "annotations", "categories")
MAX_SIDE = 1 << 20  # pixels; keeps sizes, and the cache arithmetic on them, far from overflow
MAX_ID = 1 << 53  # JSON's exact integers


def load_coco_json(path: str | Path, *, max_category_id: int | None = None,
                   allow_outside_images: bool = False) -> dict[str, Any]:
    """Parse and validate a COCO detection file; returns the parsed dict unchanged.

    Raises ``DataError`` on a missing or unreadable file, malformed JSON (with line and column) or a schema
    violation (with the list, index, id and field).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"annotation file not found: {path}")
    if not path.is_file():
        raise DataError(f"annotation path is not a file: {path}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read annotation file {path}: {err.strerror or err}") from err
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    validate_coco(data, path, max_category_id=max_category_id, allow_outside_images=allow_outside_images)
    return data


def validate_coco(data: Any, path: str | Path, *, max_category_id: int | None = None,
                  allow_outside_images: bool = False) -> None:
    """Check the parts of the COCO schema that detection training and evaluation rely on.

    Category ids index the classifier as they are (0 ≤ id ≤ ``max_category_id``; None: the default bound
    ``max(100, 4 × number of categories)``, which COCO's 80 categories with ids up to 90 meet). Image file
    names must stay inside the image folder unless ``allow_outside_images``.
    """
    if not isinstance(data, dict):
        raise DataError(f"{path}: the top level must be a JSON object, got {_kind(data)}")
    for key in _LISTS:
        if key not in data:
            raise DataError(f"{path}: missing the '{key}' list")
        if not isinstance(data[key], list):
            raise DataError(f"{path}: '{key}' must be a list, got {_kind(data[key])}")

    image_ids = _check_ids(data["images"], "images", path)
    for i, image in enumerate(data["images"]):
        where = _where(path, "images", i, image)
        if not isinstance(image.get("file_name"), str) or not image["file_name"] or "\0" in image["file_name"]:
            raise DataError(
                f"{where}: 'file_name' must be a non-empty string, got {image.get('file_name')!r}"
            )
        if not allow_outside_images and _outside(image["file_name"]):
            raise DataError(f"{where}: file_name {image['file_name']!r} points outside the image folder; "
                            "set data.allow_outside_images=true to read it anyway")
        for side in ("width", "height"):
            value = image.get(side)
            if not (_is_number(value) and math.isfinite(value) and 0 < value <= MAX_SIDE and value == int(value)):
                raise DataError(f"{where}: '{side}' must be a positive integer ≤ {MAX_SIDE}, got {value!r}")

    if not data["categories"]:
        raise DataError(f"{path}: 'categories' is empty; a detection set needs at least one category")
    category_ids = _check_ids(data["categories"], "categories", path)
    bound = max_category_id if max_category_id is not None else max(100, 4 * len(category_ids))
    for i, category in enumerate(data["categories"]):
        where = _where(path, "categories", i, category)
        if not isinstance(category.get("name"), str):
            raise DataError(f"{where}: 'name' must be a string")
        if category["id"] < 0:
            raise DataError(f"{where}: category ids must be ≥ 0 (they index the classifier)")
        if category["id"] > bound:
            raise DataError(
                f"{where}: category id {category['id']} would need a {category['id'] + 1}-way classifier for "
                f"{len(category_ids)} categories (ids are not remapped); renumber the ids, or set "
                f"data.max_category_id={category['id']} to allow it")

    _check_ids(data["annotations"], "annotations", path)
    known = ", ".join(str(c) for c in sorted(category_ids)[:20])
    for i, ann in enumerate(data["annotations"]):
        where = _where(path, "annotations", i, ann)
        for key in ("image_id", "category_id"):
            if not _is_int(ann.get(key)):
                raise DataError(f"{where}: '{key}' must be an integer, got {ann.get(key)!r}")
        if ann["image_id"] not in image_ids:
            raise DataError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        if ann["category_id"] not in category_ids:
            raise DataError(
                f"{where}: category_id {ann['category_id']} is not in 'categories' (ids: {known})"
            )
        bbox = ann.get("bbox")
        if not (
            isinstance(bbox, list)
            and len(bbox) == 4
            and all(_is_number(v) and math.isfinite(v) for v in bbox)
        ):
            raise DataError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {bbox!r}")
        if ann.get("iscrowd", 0) not in (0, 1):
            raise DataError(f"{where}: 'iscrowd' must be 0 or 1, got {ann['iscrowd']!r}")
        if "area" in ann and not (_is_number(ann["area"]) and math.isfinite(ann["area"])):
            raise DataError(f"{where}: 'area' must be a finite number, got {ann['area']!r}")


def _check_ids(entries: list, key: str, path: str | Path) -> set[int]:
    """Every entry is an object with a unique integer id; returns the ids."""
    first_index: dict[int, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: {key}[{i}] must be an object, got {_kind(entry)}")
        entry_id = entry.get("id")
        if not _is_int(entry_id) or abs(entry_id) > MAX_ID:
            raise DataError(f"{path}: {key}[{i}]: 'id' must be an integer within ±2^53, got {entry_id!r}")
        if entry_id in first_index:
            raise DataError(
                f"{path}: {key}[{i}]: duplicate id {entry_id} (also {key}[{first_index[entry_id]}])"
            )
        first_index[entry_id] = i
    return set(first_index)


def _outside(file_name: str) -> bool:
    """An absolute name, or one whose ``..`` parts climb above the folder it is read from."""
    norm = posixpath.normpath(file_name.replace("\\", "/"))
    return posixpath.isabs(norm) or ntpath.isabs(file_name) or norm == ".." or norm.startswith("../")


def _where(path: str | Path, key: str, index: int, entry: dict) -> str:
    return f"{path}: {key}[{index}] (id={entry.get('id')})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)
