"""Read a COCO detection annotation file and check its schema, failing with the file and entry named."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import DataError

_LISTS = ("images", "annotations", "categories")


def load_coco_json(path: str | Path) -> dict[str, Any]:
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
    validate_coco(data, path)
    return data


def validate_coco(data: Any, path: str | Path) -> None:
    """Check the parts of the COCO schema that detection training and evaluation rely on."""
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
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise DataError(
                f"{where}: 'file_name' must be a non-empty string, got {image.get('file_name')!r}"
            )
        for side in ("width", "height"):
            value = image.get(side)
            if not (_is_number(value) and math.isfinite(value) and value > 0 and value == int(value)):
                raise DataError(f"{where}: '{side}' must be a positive integer, got {value!r}")

    category_ids = _check_ids(data["categories"], "categories", path)
    for i, category in enumerate(data["categories"]):
        if not isinstance(category.get("name"), str):
            raise DataError(f"{_where(path, 'categories', i, category)}: 'name' must be a string")

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
        if "area" in ann and not _is_number(ann["area"]):
            raise DataError(f"{where}: 'area' must be a number, got {ann['area']!r}")


def _check_ids(entries: list, key: str, path: str | Path) -> set[int]:
    """Every entry is an object with a unique integer id; returns the ids."""
    first_index: dict[int, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: {key}[{i}] must be an object, got {_kind(entry)}")
        entry_id = entry.get("id")
        if not _is_int(entry_id):
            raise DataError(f"{path}: {key}[{i}]: 'id' must be an integer, got {entry_id!r}")
        if entry_id in first_index:
            raise DataError(
                f"{path}: {key}[{i}]: duplicate id {entry_id} (also {key}[{first_index[entry_id]}])"
            )
        first_index[entry_id] = i
    return set(first_index)


def _where(path: str | Path, key: str, index: int, entry: dict) -> str:
    return f"{path}: {key}[{index}] (id={entry.get('id')})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)
