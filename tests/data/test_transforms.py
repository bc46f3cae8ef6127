"""Transforms keep boxes on their objects: flips, resizes and DETR's crop branch."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ablate.data import DataConfig, build_transforms
from ablate.data.transforms import IMAGENET_MEAN, IMAGENET_STD, RandomSizeCrop, finishing_steps

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def _scene(height: int = 60, width: int = 80) -> tuple[tv_tensors.Image, dict]:
    """Black image with a red object (label 1) and a green one (label 2), boxes exactly on them."""
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[0, 10:30, 5:45] = 255
    image[1, 35:55, 50:70] = 255
    boxes = tv_tensors.BoundingBoxes(
        [[5, 10, 45, 30], [50, 35, 70, 55]], format="XYXY", canvas_size=(height, width)
    )
    return tv_tensors.Image(image), {"boxes": boxes, "labels": torch.tensor([1, 2])}


def _pixels(image: torch.Tensor) -> torch.Tensor:
    return image * STD + MEAN  # back to [0, 1]


def test_finishing_gives_normalised_cxcywh_and_imagenet_normalisation() -> None:
    image, target = _scene()
    out, target = v2.Compose(finishing_steps())(image, target)
    assert type(out) is torch.Tensor and out.dtype == torch.float32
    assert type(target["boxes"]) is torch.Tensor
    torch.testing.assert_close(target["boxes"][0], torch.tensor([25 / 80, 20 / 60, 40 / 80, 20 / 60]))
    torch.testing.assert_close(_pixels(out), image.float() / 255, atol=1e-6, rtol=0)


def test_flip_maps_cx_to_one_minus_cx() -> None:
    image, target = _scene()
    _, plain = v2.Compose(finishing_steps())(image, target)
    out, flipped = v2.Compose([v2.RandomHorizontalFlip(p=1.0), *finishing_steps()])(image, target)
    torch.testing.assert_close(flipped["boxes"][:, 0], 1 - plain["boxes"][:, 0])
    torch.testing.assert_close(flipped["boxes"][:, 1:], plain["boxes"][:, 1:])
    assert _pixels(out)[0, 20, 80 - 1 - 5] > 0.99  # the red object moved with its box


def test_train_flip_happens_about_half_the_time() -> None:
    cfg = DataConfig(train_scales=[60], crop=False, flip=True)
    transform = build_transforms(cfg, train=True)
    image, target = _scene()
    torch.manual_seed(0)
    centres = {round(transform(image, target)[1]["boxes"][0, 0].item(), 4) for _ in range(30)}
    assert centres == {round(25 / 80, 4), round(1 - 25 / 80, 4)}


def test_val_resize_keeps_normalised_boxes_and_caps_the_long_side() -> None:
    image, target = _scene()
    _, plain = v2.Compose(finishing_steps())(image, target)
    out, resized = build_transforms(DataConfig(val_size=120, max_size=1000), train=False)(image, target)
    assert out.shape == (3, 120, 160)
    torch.testing.assert_close(resized["boxes"], plain["boxes"])
    out, _ = build_transforms(DataConfig(val_size=120, max_size=100), train=False)(image, target)
    assert out.shape == (3, 75, 100)


@pytest.mark.parametrize("crop", [False, True])
def test_train_pipeline_keeps_each_box_on_its_object(crop: bool) -> None:
    cfg = DataConfig(
        train_scales=[48, 64, 96], max_size=200, crop=crop, crop_scales=[60], crop_min=20, crop_max=50
    )
    transform = build_transforms(cfg, train=True)
    image, target = _scene()
    torch.manual_seed(0)
    sizes, counts = set(), set()
    for _ in range(40):
        out, result = transform(image, target)
        pixels = _pixels(out)
        height, width = out.shape[-2:]
        sizes.add(min(height, width))
        counts.add(len(result["labels"]))
        assert result["boxes"].shape == (len(result["labels"]), 4)
        assert ((result["boxes"] >= 0) & (result["boxes"] <= 1)).all()
        for (cx, cy, w, h), label in zip(result["boxes"].tolist(), result["labels"].tolist()):
            x1, x2 = round((cx - w / 2) * width), round((cx + w / 2) * width)
            y1, y2 = round((cy - h / 2) * height), round((cy + h / 2) * height)
            centre = pixels[:, int(cy * height), int(cx * width)]
            assert centre[label - 1] > 0.5 and centre[2 - label] < 0.5  # red box on red, green on green
            if min(x2 - x1, y2 - y1) >= 6:  # slivers left by the crop are blurred by the upscale
                inside = pixels[:, y1:y2, x1:x2].mean(dim=(1, 2))
                assert inside[label - 1] > 0.8 and inside[2 - label] < 0.2
    assert sizes == {48, 64, 96}
    if crop:
        assert min(counts) < 2  # the crop sometimes cuts an object out, and its label goes with it


def test_random_size_crop_respects_bounds() -> None:
    image, target = _scene()
    crop = RandomSizeCrop(20, 50)
    torch.manual_seed(0)
    shapes = {tuple(crop(image, target)[0].shape[-2:]) for _ in range(50)}
    assert all(20 <= h <= 50 and 20 <= w <= 50 for h, w in shapes) and len(shapes) > 10
    small = tv_tensors.Image(torch.zeros(3, 10, 12, dtype=torch.uint8))
    assert crop(small).shape[-2:] == (10, 12)  # smaller than min_size: kept whole
