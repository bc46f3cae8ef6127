"""A COCO detection data set: (image folder, annotation JSON) -> (normalised image, DETR target)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
from PIL import Image
from pycocotools.coco import COCO
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from tqdm import tqdm

from .coco_json import load_coco_json
from .errors import DataError
from .threads import single_threaded
from .transforms import finishing_steps

__all__ = ["CocoDetection", "load_coco_json"]

logger = logging.getLogger(__name__)

Transform = Callable[[tv_tensors.Image, dict[str, Any]], tuple[torch.Tensor, dict[str, Any]]]
_PROGRESS_FROM = 500  # images


class CocoDetection(Dataset):
    """Images and boxes of a COCO file, cleaned for training.

    Crowd boxes are left out of the targets, boxes are clipped to the image and those left empty dropped;
    targets carry the file's own category ids. ``coco`` is the ground truth for evaluation: the file as given.
    """

    def __init__(
        self,
        image_dir: str | Path,
        ann_file: str | Path,
        transforms: Transform | None = None,
        *,
        cache_images: bool = False,
        max_cache_bytes: int | None = None,
        max_category_id: int | None = None,
        allow_outside_images: bool = False,
    ) -> None:
        self.image_dir = Path(image_dir)
        self.ann_file = Path(ann_file)
        if not self.image_dir.is_dir():
            raise DataError(f"image folder not found: {self.image_dir}")
        self._json_options = {"max_category_id": max_category_id, "allow_outside_images": allow_outside_images}
        data = load_coco_json(self.ann_file, **self._json_options)
        if not data["images"]:
            raise DataError(f"{self.ann_file}: no images, the data set is empty")
        self.transforms = transforms if transforms is not None else v2.Compose(finishing_steps())

        images = sorted(data["images"], key=lambda image: image["id"])
        self.image_ids: list[int] = [image["id"] for image in images]
        self._files: list[str] = [image["file_name"] for image in images]
        self._sizes = np.array([(int(im["height"]), int(im["width"])) for im in images], dtype=np.int64)
        self._check_files_exist()
        self.category_ids: list[int] = sorted(c["id"] for c in data["categories"])
        self.category_names: dict[int, str] = {c["id"]: c["name"] for c in data["categories"]}
        self._build_targets(data["annotations"])
        del data  # the parsed JSON is the large part; ``coco`` re-reads the file when asked

        # One flat uint8 buffer: no per-image allocations, and cheap to share with forked workers.
        self._cache: torch.Tensor | None = None
        self._cache_offsets: np.ndarray | None = None
        if cache_images:
            self._fill_cache(max_cache_bytes)

    @property
    def image_sizes(self) -> np.ndarray:
        """(N, 2) int64 array of every image's (height, width), as the annotation file gives them."""
        return self._sizes

    @property
    def num_classes(self) -> int:
        """Size of a classifier indexed by raw category id (ids are not remapped)."""
        return max(self.category_ids) + 1

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        image = self.load_image(index)
        height, width = image.shape[-2:]
        start, end = self._offsets[index], self._offsets[index + 1]
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.from_numpy(self._boxes[start:end]), format="XYXY", canvas_size=(height, width)
            ),
            "labels": torch.from_numpy(self._labels[start:end]),
        }
        image, target = self.transforms(tv_tensors.Image(image), target)
        return image, {
            "boxes": target["boxes"],
            "labels": target["labels"],
            "image_id": self.image_ids[index],
            "orig_size": torch.tensor([height, width], dtype=torch.int64),
            "size": torch.tensor(image.shape[-2:], dtype=torch.int64),
        }

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        """A batch, fetched single-threaded (the DataLoader calls this instead of ``__getitem__``)."""
        with single_threaded():
            return [self[i] for i in indices]

    def load_image(self, index: int) -> torch.Tensor:
        """The decoded RGB image, uint8 (3, H, W), from the cache when there is one."""
        if self._cache is not None:
            height, width = self._sizes[index]
            start = self._cache_offsets[index]
            return self._cache[start : start + 3 * height * width].view(3, height, width)
        return self._decode(index)

    @cached_property
    def coco(self) -> COCO:
        """pycocotools ground truth for evaluation: the annotation file as given (boxes neither clipped nor
        dropped, crowd kept), so plain pycocotools on ``detections.json`` and this file gives the reported AP.
        Only the fields COCOeval reads and a file may lack get COCO's defaults: ``iscrowd`` 0, ``area`` w·h."""
        data = load_coco_json(self.ann_file, **self._json_options)
        annotations = [
            {**ann, "iscrowd": int(ann.get("iscrowd", 0)), "area": ann.get("area", ann["bbox"][2] * ann["bbox"][3])}
            for ann in data["annotations"]
        ]
        coco = COCO()
        coco.dataset = {
            "info": data.get("info", {}),
            "licenses": data.get("licenses", []),
            "images": data["images"],
            "annotations": annotations,
            "categories": data["categories"],
        }
        with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
            coco.createIndex()
        return coco

    def __getstate__(self) -> dict[str, Any]:
        # Workers need neither the evaluation index nor its memory.
        return {k: v for k, v in self.__dict__.items() if k != "coco"}

    @cached_property
    def _index_of(self) -> dict[int, int]:
        return {image_id: i for i, image_id in enumerate(self.image_ids)}

    def _check_files_exist(self) -> None:
        # One directory listing instead of a stat per file: COCO train has 118k images. is_file() follows
        # symlinks and is False for a FIFO, a device or a folder: only regular files are ever opened.
        entries = {entry.name: entry for entry in os.scandir(self.image_dir)}

        def regular(name: str) -> bool | None:  # None: not there at all
            if "/" not in name:
                return entries[name].is_file() if name in entries else None
            path = self.image_dir / name
            return path.is_file() if path.exists() else None

        found = {name: regular(name) for name in self._files}
        missing = [name for name, ok in found.items() if ok is None]
        if missing:
            raise DataError(
                f"{self.image_dir}: {len(missing)} of {len(self._files)} image files listed in "
                f"{self.ann_file.name} are missing, e.g. {', '.join(missing[:5])}"
            )
        irregular = [name for name, ok in found.items() if not ok]
        if irregular:
            raise DataError(
                f"{self.image_dir}: {len(irregular)} image entries of {self.ann_file.name} are not regular files "
                f"(a FIFO, device or folder), e.g. {', '.join(irregular[:5])}"
            )

    def _build_targets(self, annotations: list[dict[str, Any]]) -> None:
        """Flat xyxy boxes and labels with per-image offsets (few large arrays pickle fast to workers)."""
        per_image: dict[int, list[tuple[list[float], int]]] = {}
        clipped = dropped = crowd = 0
        index_of = self._index_of
        for ann in annotations:
            if ann.get("iscrowd", 0):
                crowd += 1
                continue
            height, width = self._sizes[index_of[ann["image_id"]]]
            box = _clip_xywh(ann["bbox"], width, height)
            if box is None:
                dropped += 1
                continue
            x, y, w, h = ann["bbox"]
            clipped += box != [x, y, x + w, y + h]
            per_image.setdefault(ann["image_id"], []).append((box, ann["category_id"]))
        counts = [len(per_image.get(image_id, ())) for image_id in self.image_ids]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        entries = [entry for image_id in self.image_ids for entry in per_image.get(image_id, ())]
        self._boxes = np.array([box for box, _ in entries], dtype=np.float32).reshape(-1, 4)
        self._labels = np.array([label for _, label in entries], dtype=np.int64)
        self.stats = {"boxes": len(entries), "clipped": clipped, "dropped": dropped, "crowd": crowd}
        if clipped or dropped or crowd:
            level = logging.WARNING if clipped or dropped else logging.INFO
            logger.log(
                level,
                "%s: clipped %d boxes to the image, dropped %d degenerate boxes, skipped %d crowd boxes",
                self.ann_file.name,
                clipped,
                dropped,
                crowd,
            )

    def _decode(self, index: int) -> torch.Tensor:
        path = self.image_dir / self._files[index]
        try:
            with Image.open(io.BytesIO(_read_regular_file(path))) as img:
                pixels = _to_rgb_array(img)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise DataError(f"cannot decode image {path}: {err}") from err
        expected = tuple(self._sizes[index])
        if pixels.shape[:2] != expected:
            raise DataError(
                f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]} but {self.ann_file.name} says "
                f"{expected[1]}x{expected[0]}"
            )
        return torch.from_numpy(pixels).permute(2, 0, 1)

    def _fill_cache(self, max_cache_bytes: int | None) -> None:
        sizes = 3 * self._sizes[:, 0] * self._sizes[:, 1]
        needed = int(sizes.sum())
        budget = max_cache_bytes if max_cache_bytes is not None else psutil.virtual_memory().available // 2
        if needed > budget:
            logger.warning(
                "%s: not caching images: they need %.1f GiB, the budget is %.1f GiB",
                self.ann_file.name,
                needed / 2**30,
                budget / 2**30,
            )
            return
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        cache = torch.empty(needed, dtype=torch.uint8)
        progress = tqdm(
            range(len(self)), desc=f"caching {self.ann_file.name}", disable=len(self) < _PROGRESS_FROM
        )
        with single_threaded():
            for i in progress:
                cache[offsets[i] : offsets[i] + sizes[i]] = self._decode(i).reshape(-1)
        self._cache, self._cache_offsets = cache, offsets


def _read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, refusing anything but a regular file without blocking on it (a FIFO put in
    place of an image after the start-up check would otherwise hang the loader)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file: {path}")
        return fh.read()


def _clip_xywh(bbox: list[float], width: int, height: int) -> list[float] | None:
    """COCO [x, y, w, h] -> xyxy clipped to the image; None when nothing of it is left."""
    x, y, w, h = bbox
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        return None
    return [x1, y1, x2, y2]


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) from any PIL mode (grayscale, 16-bit, RGBA, palette, CMYK...)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # convert("RGB") would saturate deep grayscale; rescale its range to 8 bits instead.
        deep = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or deep.max() > 255 else 255.0
        gray = np.clip(deep * (255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when a palette with transparency goes straight to RGB
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img)  # a writable copy: torch.from_numpy warns on PIL's read-only buffer
