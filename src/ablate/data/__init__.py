"""Data layer: COCO-format detection data (real COCO or the synthetic shapes set) for Conditional DETR."""

from .build import build_datasets, build_loader, check_num_classes, data_num_classes, default_cache_root
from .coco import CocoDetection
from .coco_json import load_coco_json
from .collate import EpochSampler, collate
from .config import DataConfig, ShapesConfig
from .errors import DataError
from .shapes import ShapesPaths, generate_shapes
from .transforms import build_transforms

__all__ = [
    "CocoDetection",
    "DataConfig",
    "DataError",
    "EpochSampler",
    "ShapesConfig",
    "ShapesPaths",
    "build_datasets",
    "build_loader",
    "build_transforms",
    "check_num_classes",
    "collate",
    "data_num_classes",
    "default_cache_root",
    "generate_shapes",
    "load_coco_json",
]
