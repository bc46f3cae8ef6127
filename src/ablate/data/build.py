"""From a ``DataConfig`` to data sets and loaders: the data layer's entry points for the trainer."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .coco import CocoDetection
from .coco_json import load_coco_json
from .collate import EpochSampler, collate
from .config import DataConfig
from .errors import DataError
from .shapes import CATEGORIES as SHAPE_CATEGORIES
from .shapes import generate_shapes
from .transforms import build_transforms


def default_cache_root() -> Path:
    """Where generated data lives when ``data.root`` is unset: $ABLATE_CACHE, else ~/.cache/ablate."""
    return Path(os.environ.get("ABLATE_CACHE") or Path.home() / ".cache" / "ablate").expanduser()


def build_datasets(cfg: DataConfig) -> tuple[CocoDetection, CocoDetection]:
    """(train, val) data sets; generates the shapes set on first use."""
    if cfg.name == "shapes":
        root = Path(cfg.root).expanduser() if cfg.root else default_cache_root()
        paths = generate_shapes(root, cfg.shapes)
        train_images, val_images = paths.train_images, paths.val_images
        train_ann, val_ann = paths.train_ann, paths.val_ann
    elif cfg.name == "coco":
        if not cfg.root:
            raise DataError(
                "data.root must point at the COCO folder when data.name=coco (e.g. data.root=/data/coco)"
            )
        root = Path(cfg.root).expanduser()
        if not root.is_dir():
            raise DataError(f"COCO root folder not found: {root} (data.root)")
        train_images = Path(cfg.train_images or root / "train2017")
        val_images = Path(cfg.val_images or root / "val2017")
        train_ann = Path(cfg.train_ann or root / "annotations" / "instances_train2017.json")
        val_ann = Path(cfg.val_ann or root / "annotations" / "instances_val2017.json")
    else:
        raise DataError(f"unknown data set data.name={cfg.name!r}; expected 'shapes' or 'coco'")
    train = CocoDetection(
        train_images, train_ann, build_transforms(cfg, train=True), cache_images=cfg.cache_images
    )
    val = CocoDetection(
        val_images, val_ann, build_transforms(cfg, train=False), cache_images=cfg.cache_images
    )
    return train, val


def data_num_classes(cfg: DataConfig) -> int:
    """The classifier size the data needs (largest category id + 1), without building the data set: the shapes
    set's fixed categories, or the categories of a COCO-layout set's validation annotation file."""
    if cfg.name == "shapes":
        return len(SHAPE_CATEGORIES) + 1  # ids 1..5
    root = Path(cfg.root).expanduser() if cfg.root else None
    ann = Path(cfg.val_ann) if cfg.val_ann else (root / "annotations" / "instances_val2017.json" if root else None)
    if ann is None or not ann.is_file():
        raise DataError(f"cannot read the categories: no annotation file {ann} (data.val_ann / data.root)")
    return max(c["id"] for c in load_coco_json(ann)["categories"]) + 1


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    train: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches of ``collate``; train shuffles by (seed, epoch) and drops the last partial batch.

    Call ``loader.sampler.set_epoch(e)`` every epoch and ``set_start(k)`` to resume after k samples.
    """
    sampler = EpochSampler(len(dataset), shuffle=train, seed=seed, rank=rank, world_size=world_size)
    if train and sampler.num_samples < batch_size:
        raise DataError(
            f"{sampler.num_samples} training images per rank are fewer than one batch of {batch_size}: "
            "an epoch would have no batches"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=train,
        persistent_workers=num_workers > 0,
        # Seeds the workers' augmentation RNG, so it follows the run's seed.
        generator=torch.Generator().manual_seed(seed),
    )
