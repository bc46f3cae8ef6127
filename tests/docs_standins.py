"""Tiny stand-ins for what the documented commands name but this machine cannot have: a COCO-2017-layout data set
(with COCO's own category ids, so ``num_classes`` is 91 as for real COCO), an ImageNet ResNet-50 state dict, and
a released Conditional DETR-R50 checkpoint in the authors' key names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import torchvision

from ablate.config import compose
from ablate.data import ShapesConfig, generate_shapes
from ablate.models.builder import build_model
from ablate.models.convert import RENAMES

COCO_IDS = {1: 1, 2: 3, 3: 18, 4: 44, 5: 90}  # the shapes' ids 1..5 → ids from COCO's own range


def make_coco(root: Path, num_train: int = 8, num_val: int = 4) -> Path:
    shapes = generate_shapes(root / "source", ShapesConfig(num_train=num_train, num_val=num_val))
    coco = root / "coco"
    (coco / "annotations").mkdir(parents=True)
    for split, images, ann in (("train2017", shapes.train_images, shapes.train_ann),
                               ("val2017", shapes.val_images, shapes.val_ann)):
        shutil.copytree(images, coco / split)
        data = json.loads(Path(ann).read_text())
        for c in data["categories"]:
            c["id"] = COCO_IDS[c["id"]]
        for a in data["annotations"]:
            a["category_id"] = COCO_IDS[a["category_id"]]
        (coco / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return coco


def make_resnet50(folder: Path) -> Path:
    torch.manual_seed(0)
    path = folder / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return path


def make_released_r50(folder: Path, overrides: list[str]) -> Path:
    """Our model for ``overrides``, saved as the authors' checkpoints are: ``{"model": …, "args": …}`` with their
    parameter names, so loading it goes through the converter."""
    torch.manual_seed(0)
    state = build_model(compose(overrides)).state_dict()
    theirs = {}
    for key, value in state.items():
        for old, new in RENAMES:
            if key.startswith(new):
                key = old + key[len(new):]
                break
        theirs[key] = value
    path = folder / "ConditionalDETR_r50_epoch50.pth"
    torch.save({"model": theirs, "args": {"stand_in": True}}, path)
    return path
