"""Structured (Hydra) configs of the data layer: plain types only, so OmegaConf can type-check overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

from ablate.registry import Choice


class DataName(Choice):
    shapes = "shapes"  # the embedded synthetic set
    coco = "coco"  # any data set in COCO-2017 layout


@dataclass
class ShapesConfig:
    """The synthetic data set; every field is part of the cache hash."""

    num_train: int = 4000
    num_val: int = 300
    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 5
    min_size: int = 10  # each side of an object's full box, in pixels
    max_size: int = 64
    noise: float = 8.0  # std of the additive Gaussian pixel noise (0..255 scale)
    seed: int = 1234


@dataclass
class DataConfig:
    """Which data set and how it is augmented.

    The defaults are the shapes preset (``name`` defaults to ``shapes``); ``conf/data/coco.yaml`` holds the
    paper's COCO values.
    """

    name: DataName = DataName.shapes
    root: str | None = None  # shapes: cache folder (None -> $ABLATE_CACHE or ~/.cache/ablate); coco: required
    train_images: str | None = None  # coco: default <root>/train2017
    val_images: str | None = None  # coco: default <root>/val2017
    train_ann: str | None = None  # coco: default <root>/annotations/instances_train2017.json
    val_ann: str | None = None  # coco: default <root>/annotations/instances_val2017.json
    shapes: ShapesConfig = field(default_factory=ShapesConfig)
    train_scales: list[int] = field(default_factory=lambda: [96, 104, 112, 120, 128, 136, 144])
    max_size: int = 192  # cap on the longer side after resizing
    val_size: int = 128
    crop: bool = False  # DETR's random-size crop branch, taken with p=0.5
    crop_scales: list[int] = field(default_factory=lambda: [128])  # short side before the crop
    crop_min: int = 80
    crop_max: int = 128
    flip: bool = True
    num_workers: int = 0
    cache_images: bool = True  # decode every image once into RAM (small data sets)
    # fixed: the sizes above as given; auto: scaled to the training images' median short side, capped by
    # model.max_resolution (the sizes above are then read relative to val_size)
    resolution: str = "fixed"
    max_category_id: int | None = None  # None: ids up to max(100, 4 × number of categories)
    allow_outside_images: bool = False  # let file_name be absolute or climb out of the image folder (../)
