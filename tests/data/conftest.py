"""Fixtures that write small, real COCO folders (JSON + image files) under tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from ablate.data import ShapesConfig

MakeCoco = Callable[..., tuple[Path, Path]]


@pytest.fixture
def make_coco(tmp_path: Path) -> MakeCoco:
    """Write ``images/`` and ``instances.json``; image files not already present are made as RGB JPEGs."""

    def make(
        images: list[dict] | None = None,
        annotations: list[dict] | None = None,
        categories: list[dict] | None = None,
        *,
        write_images: bool = True,
    ) -> tuple[Path, Path]:
        image_dir = tmp_path / "images"
        image_dir.mkdir(exist_ok=True)
        images = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}] if images is None else images
        if write_images:
            for record in images:
                path = image_dir / record["file_name"]
                if not path.exists():
                    Image.new("RGB", (record["width"], record["height"]), (90, 120, 150)).save(path)
        data = {
            "info": {"description": "test"},
            "images": images,
            "annotations": annotations or [],
            "categories": categories or [{"id": 1, "name": "thing"}],
        }
        ann_file = tmp_path / "instances.json"
        ann_file.write_text(json.dumps(data, indent=1))
        return image_dir, ann_file

    return make


@pytest.fixture
def small_shapes() -> ShapesConfig:
    """A shapes set small enough to generate in well under a second."""
    return ShapesConfig(num_train=24, num_val=8)
