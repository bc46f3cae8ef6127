"""DETR's augmentation recipe on torchvision transforms v2.

Every pipeline takes ``(tv_tensors.Image uint8, {"boxes": BoundingBoxes XYXY, "labels": ...})`` and returns a
plain float32 normalised image and a target whose ``boxes`` are normalised cxcywh in [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.ops import box_convert
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .config import DataConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomSizeCrop(v2.Transform):
    """Crop a random region whose sides are uniform in [min_size, max_size], bounded by the image (DETR).

    Boxes are clipped to the crop by the v2 kernel; follow with ``SanitizeBoundingBoxes`` to drop the empty ones.
    """

    def __init__(self, min_size: int, max_size: int) -> None:
        super().__init__()
        if not 0 < min_size <= max_size:
            raise ValueError(f"RandomSizeCrop needs 0 < min_size <= max_size, got {min_size}, {max_size}")
        self.min_size = min_size
        self.max_size = max_size

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        # An image smaller than min_size is kept whole along that side instead of failing.
        h = int(torch.randint(min(self.min_size, height), min(self.max_size, height) + 1, ()))
        w = int(torch.randint(min(self.min_size, width), min(self.max_size, width) + 1, ()))
        top = int(torch.randint(0, height - h + 1, ()))
        left = int(torch.randint(0, width - w + 1, ()))
        return {"top": top, "left": left, "height": h, "width": w}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.crop(inpt, **params)


class ToModelFormat:
    """Last step: plain tensors, boxes as normalised cxcywh of the transformed image."""

    def __call__(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        boxes = target["boxes"]
        if boxes.format != tv_tensors.BoundingBoxFormat.XYXY:
            boxes = F.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY)
        height, width = boxes.canvas_size
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        cxcywh = box_convert(boxes.as_subclass(torch.Tensor).float(), "xyxy", "cxcywh") / scale
        return image.as_subclass(torch.Tensor), {**target, "boxes": cxcywh}


def finishing_steps() -> list[Any]:
    """Dtype, ImageNet normalisation and the model's box format: the part every pipeline shares."""
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD), ToModelFormat()]


def build_transforms(cfg: DataConfig, *, train: bool) -> v2.Compose:
    """Train: flip, then multi-scale resize or (p=0.5) resize-crop-resize; val: fixed short side."""
    steps: list[Any] = []
    if train:
        if cfg.flip:
            steps.append(v2.RandomHorizontalFlip(p=0.5))
        resize = v2.RandomShortestSize(list(cfg.train_scales), max_size=cfg.max_size)
        if cfg.crop:
            crop = v2.Compose(
                [
                    v2.RandomShortestSize(list(cfg.crop_scales)),  # DETR: no max size before the crop
                    RandomSizeCrop(cfg.crop_min, cfg.crop_max),
                    v2.SanitizeBoundingBoxes(),
                    v2.RandomShortestSize(list(cfg.train_scales), max_size=cfg.max_size),
                ]
            )
            steps.append(v2.RandomChoice([resize, crop]))
        else:
            steps.append(resize)
    else:
        steps.append(
            v2.RandomShortestSize([cfg.val_size], max_size=cfg.max_size)
        )  # one choice: deterministic
    return v2.Compose(steps + finishing_steps())
