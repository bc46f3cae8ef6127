"""build_datasets / build_loader from a DataConfig, the Hydra group files, and loader throughput."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ablate.data import DataConfig, DataError, ShapesConfig, build_datasets, build_loader

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"


def test_shapes_datasets_are_generated_and_transformed(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    cfg = DataConfig(root=str(tmp_path), shapes=small_shapes)
    train, val = build_datasets(cfg)
    assert (len(train), len(val)) == (small_shapes.num_train, small_shapes.num_val)
    assert train.num_classes == 6 and train.category_ids == [1, 2, 3, 4, 5]
    image, target = val[0]
    assert image.shape == (3, cfg.val_size, cfg.val_size) and target["size"].tolist() == [128, 128]
    torch.manual_seed(0)
    assert {train[0][0].shape[-1] for _ in range(20)} <= set(cfg.train_scales)


def test_an_omegaconf_node_works_like_the_dataclass(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    node = OmegaConf.structured(DataConfig(root=str(tmp_path), shapes=small_shapes))  # what Hydra hands over
    train, _ = build_datasets(node)
    assert train.ann_file == build_datasets(DataConfig(root=str(tmp_path), shapes=small_shapes))[0].ann_file


def test_workers_see_the_same_data_and_evaluation_state_stays_home(
    tmp_path: Path, small_shapes: ShapesConfig
) -> None:
    _, val = build_datasets(DataConfig(root=str(tmp_path), shapes=small_shapes))
    assert val.coco is not None and "coco" not in pickle.loads(pickle.dumps(val)).__dict__
    batches = [
        [
            (images, [t["image_id"] for t in targets])
            for images, _, targets in build_loader(val, 4, train=False, seed=0, num_workers=workers)
        ]
        for workers in (0, 1)
    ]
    assert len(batches[0]) == 2
    for (a, ids_a), (b, ids_b) in zip(*batches):
        assert ids_a == ids_b and torch.equal(a, b)


def test_shapes_default_root_follows_ablate_cache(
    tmp_path: Path, small_shapes: ShapesConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path / "cache"))
    train, _ = build_datasets(DataConfig(shapes=small_shapes, cache_images=False))
    assert train.ann_file.is_relative_to(tmp_path / "cache")


def test_coco_needs_an_existing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.root must point at the COCO folder"):
        build_datasets(DataConfig(name="coco"))
    with pytest.raises(DataError, match=r"COCO root folder not found: .*nowhere"):
        build_datasets(DataConfig(name="coco", root=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match=r"image folder not found: .*train2017"):
        build_datasets(DataConfig(name="coco", root=str(tmp_path)))
    with pytest.raises(DataError, match=r"unknown data set data\.name='voc'"):
        build_datasets(DataConfig(name="voc"))


@pytest.mark.parametrize("name", ["shapes", "coco"])
def test_group_files_match_the_structured_config(name: str) -> None:
    cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), OmegaConf.load(CONF / f"{name}.yaml"))
    assert cfg.name == name
    if name == "coco":  # the paper's recipe
        assert list(cfg.train_scales) == list(range(480, 801, 32)) and cfg.max_size == 1333
        assert cfg.val_size == 800 and cfg.crop and (cfg.crop_min, cfg.crop_max) == (384, 600)
    else:
        assert OmegaConf.to_object(cfg) == DataConfig()  # the dataclass defaults are the shapes preset


def test_loader_batches_and_too_small_a_dataset(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    train, _ = build_datasets(DataConfig(root=str(tmp_path), shapes=small_shapes))
    images, mask, targets = next(iter(build_loader(train, 8, train=True, seed=0)))
    assert images.shape[0] == 8 and mask.shape == (8, *images.shape[-2:]) and len(targets) == 8
    assert len(build_loader(train, 5, train=True, seed=0)) == small_shapes.num_train // 5
    with pytest.raises(DataError, match=r"fewer than one batch"):
        build_loader(train, 16, train=True, seed=0, world_size=2)


def test_loader_throughput_with_cached_shapes(tmp_path: Path) -> None:
    """Default shapes config (fewer images: the rate per image does not depend on the count)."""
    cfg = DataConfig(root=str(tmp_path), shapes=ShapesConfig(num_train=640, num_val=8), cache_images=True)
    train, _ = build_datasets(cfg)
    loader = build_loader(train, 32, train=True, seed=0, num_workers=0)
    start = time.perf_counter()
    seen = sum(images.shape[0] for images, _, _ in loader)
    rate = seen / (time.perf_counter() - start)
    print(f"\nshapes loader: {rate:.0f} images/s (batch 32, cache_images, num_workers=0)")
    assert seen == 640 and rate > 50  # loose: the CPU is shared
