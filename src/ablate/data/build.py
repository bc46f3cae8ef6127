"""From a ``DataConfig`` to data sets and loaders: the data layer's entry points for the trainer."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .coco import CocoDetection
from .coco_json import load_coco_json
from .collate import EpochSampler, collate
from .config import DataConfig
from .errors import DataError
from .resolution import describe_sizes, fit_sizes
from .shapes import CATEGORIES as SHAPE_CATEGORIES
from .shapes import generate_shapes
from .transforms import build_transforms

log = logging.getLogger(__name__)


def default_cache_root() -> Path:
    """Where generated data lives when ``data.root`` is unset: $ABLATE_CACHE, else ~/.cache/ablate."""
    return Path(os.environ.get("ABLATE_CACHE") or Path.home() / ".cache" / "ablate").expanduser()


def build_datasets(cfg: DataConfig, *, max_resolution: int | None = None) -> tuple[CocoDetection, CocoDetection]:
    """(train, val) data sets; generates the shapes set on first use. ``max_resolution`` is the model's cap on
    the input size under ``data.resolution=auto`` (``model.max_resolution``)."""
    train_images, val_images, train_ann, val_ann = _paths(cfg)
    options = {"cache_images": cfg.cache_images, "max_category_id": cfg.max_category_id,
               "allow_outside_images": cfg.allow_outside_images}
    train = CocoDetection(train_images, train_ann, **options)
    sized = fit_sizes(cfg, train.image_sizes, max_resolution)
    log.info("%s", describe_sizes(sized, train.image_sizes, max_resolution))
    train.transforms = build_transforms(sized, train=True)
    val = CocoDetection(val_images, val_ann, build_transforms(sized, train=False), **options)
    # the evaluation input size actually used (data.resolution=auto fits it to the data): checkpoints record it,
    # so a trained model predicts with its own preprocessing without the data set
    val.input_size = {"val_size": int(sized.val_size), "max_size": int(sized.max_size)}
    return train, val


def check_paths(cfg: DataConfig) -> None:
    """The DataError a run would meet first when a COCO data set's folders or files are missing, raised before the
    run creates its folder (their contents are checked when the data set is read; shapes data is generated)."""
    if cfg.name != "coco":
        return
    train_images, val_images, train_ann, val_ann = _paths(cfg)
    for folder in (train_images, val_images):
        if not folder.is_dir():
            raise DataError(f"image folder not found: {folder}")
    for ann in (train_ann, val_ann):
        if not ann.is_file():
            raise DataError(f"annotation file not found: {ann}")


def _paths(cfg: DataConfig) -> tuple[Path, Path, Path, Path]:
    """(train images, val images, train annotations, val annotations) of the configured data set."""
    if cfg.name == "shapes":
        root = Path(cfg.root).expanduser() if cfg.root else default_cache_root()
        try:
            paths = generate_shapes(root, cfg.shapes)
        except ValueError as e:  # impossible generator settings (also caught by the config check)
            raise DataError(f"data.shapes: {e}") from e
        return paths.train_images, paths.val_images, paths.train_ann, paths.val_ann
    if cfg.name != "coco":
        raise DataError(f"unknown data set data.name={cfg.name!r}; expected 'shapes' or 'coco'")
    given = [cfg.train_images, cfg.val_images, cfg.train_ann, cfg.val_ann]
    if not cfg.root:
        if not all(given):
            raise DataError("data.root must point at the COCO folder when data.name=coco (e.g. data.root=/data/coco), "
                            "or give all four of data.train_images, data.val_images, data.train_ann, data.val_ann")
        return tuple(Path(p).expanduser() for p in given)  # type: ignore[return-value]
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"COCO root folder not found: {root} (data.root)")
    defaults = [root / "train2017", root / "val2017", root / "annotations" / "instances_train2017.json",
                root / "annotations" / "instances_val2017.json"]
    return tuple(Path(p).expanduser() if p else d for p, d in zip(given, defaults))  # type: ignore[return-value]


def check_num_classes(num_classes: int | None, train: CocoDetection) -> None:
    """``model.num_classes``, when set, must index every training category id (ids are not remapped)."""
    if num_classes is not None and num_classes < train.num_classes:
        raise DataError(f"model.num_classes={num_classes} is too small for {train.ann_file}: its largest category "
                        f"id is {max(train.category_ids)}, so model.num_classes must be ≥ {train.num_classes} "
                        "(or null to take it from the data)")


def data_num_classes(cfg: DataConfig) -> int:
    """The classifier size the data needs (largest category id + 1), without building the data set: the shapes
    set's fixed categories, or the categories of a COCO-layout set's validation annotation file."""
    if cfg.name == "shapes":
        return len(SHAPE_CATEGORIES) + 1  # ids 1..5
    val_ann = _paths(cfg)[3]
    return max(c["id"] for c in load_coco_json(val_ann)["categories"]) + 1


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
