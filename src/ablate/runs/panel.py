"""The fixed validation images a W&B run shows at each evaluation, with ground-truth and predicted boxes.

Boxes are in W&B's relative coordinates (fractions of the image), so the picture can be downscaled freely.
torch is imported inside the functions: ``ablate.runs.logger`` imports this module and must stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_SIDE = 512  # panels of COCO-sized images are downscaled to this (the boxes are relative)
MAX_PREDICTIONS = 20  # the highest-scoring ones; W&B's score slider filters further


@dataclass
class BoxPanel:
    image: np.ndarray  # (H, W, 3) uint8
    gt_boxes: list[dict[str, Any]]  # W&B box_data: position (relative minX…maxY), class_id, box_caption
    pred_boxes: list[dict[str, Any]]  # the same, plus scores {"score": s}
    caption: str


def panel_indices(dataset: Any, count: int = 4) -> list[int]:
    """The first ``count`` validation images that have ground-truth boxes: the same ones at every evaluation."""
    found: list[int] = []
    for index, image_id in enumerate(dataset.image_ids):  # the COCO index: no image is decoded
        if len(found) == count:
            break
        if any(not a.get("iscrowd", 0) for a in dataset.coco.imgToAnns.get(image_id, [])):
            found.append(index)
    return found


def build_panels(model: Any, dataset: Any, indices: list[int], *, focal: bool, device: Any,
                 class_names: dict[int, str]) -> list[BoxPanel]:
    """Run ``model`` (in eval mode, no gradients) on the images and pair its top predictions with the GT."""
    import torch
    from torchvision.ops import box_convert

    from ablate.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from ablate.models.postprocess import postprocess

    items = [dataset[i] for i in indices]
    valid = torch.zeros(model.num_classes, dtype=torch.bool, device=device)
    valid[list(class_names)] = True  # rank only the data set's ids (COCO's 91 slots hold 80 classes)
    with torch.no_grad():
        outputs = model([image.to(device) for image, _ in items])
        ones = torch.ones((len(items), 2), device=device)  # "image size" 1×1: boxes stay relative
        results = postprocess(outputs, ones, focal=focal, top_k=MAX_PREDICTIONS, valid_classes=valid)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    panels = []
    for (image, target), res in zip(items, results):
        picture = (image.cpu().float() * std + mean).clamp(0, 1)
        scale = MAX_SIDE / max(picture.shape[-2:])
        if scale < 1:
            picture = torch.nn.functional.interpolate(picture[None], scale_factor=scale, mode="bilinear")[0]
        gt = box_convert(torch.as_tensor(target["boxes"]).float(), "cxcywh", "xyxy").clamp(0, 1)
        pred = res["boxes"].cpu().clamp(0, 1)
        panels.append(BoxPanel(
            image=(picture.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
            gt_boxes=[_box(b, int(c), class_names) for b, c in zip(gt.tolist(), target["labels"].tolist())],
            pred_boxes=[_box(b, int(c), class_names, float(s)) for b, c, s in
                        zip(pred.tolist(), res["labels"].tolist(), res["scores"].tolist())],
            caption=f"image {target['image_id']}"))
    return panels


def _box(xyxy: list[float], class_id: int, class_names: dict[int, str], score: float | None = None) -> dict:
    name = class_names.get(class_id, str(class_id))
    box = {"position": {"minX": xyxy[0], "minY": xyxy[1], "maxX": xyxy[2], "maxY": xyxy[3]},
           "class_id": class_id, "box_caption": name if score is None else f"{name} {score:.2f}"}
    if score is not None:
        box["scores"] = {"score": score}
    return box
