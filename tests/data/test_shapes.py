"""The synthetic shapes set: deterministic, cached safely, valid COCO, and varied enough to be useful."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import multiprocessing
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.ops import box_iou

from ablate.data import CocoDetection, ShapesConfig, generate_shapes, load_coco_json
from ablate.data.shapes import CATEGORIES, MAX_IOU, shapes_hash


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_config_gives_the_same_bytes_in_two_folders(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    a = generate_shapes(tmp_path / "a", small_shapes)
    b = generate_shapes(tmp_path / "b", small_shapes)
    files_a, files_b = _files(a.train_ann.parent.parent), _files(b.train_ann.parent.parent)
    assert len(files_a) == small_shapes.num_train + small_shapes.num_val + 3  # + 2 JSON + manifest
    assert files_a == files_b


def test_a_different_seed_gives_different_data(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    a = generate_shapes(tmp_path, small_shapes)
    b = generate_shapes(tmp_path, replace(small_shapes, seed=small_shapes.seed + 1))
    assert a.train_ann.parent.parent != b.train_ann.parent.parent
    assert a.train_ann.read_bytes() != b.train_ann.read_bytes()
    assert (a.train_images / "000001.jpg").read_bytes() != (b.train_images / "000001.jpg").read_bytes()


def test_train_and_val_come_from_different_streams(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    paths = generate_shapes(tmp_path, small_shapes)
    assert (paths.train_images / "000001.jpg").read_bytes() != (paths.val_images / "000001.jpg").read_bytes()


def test_second_call_reuses_the_folder_without_writing(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    first = generate_shapes(tmp_path, small_shapes)
    folder = first.train_ann.parent.parent
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert generate_shapes(tmp_path, small_shapes) == first
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folder left behind


def test_an_incomplete_folder_is_regenerated(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    paths = generate_shapes(tmp_path, small_shapes)
    folder = paths.train_ann.parent.parent
    (folder / "manifest.json").unlink()  # as if a copy was interrupted
    (paths.train_images / "000003.jpg").unlink()
    generate_shapes(tmp_path, small_shapes)
    assert (folder / "manifest.json").is_file()
    assert len(list(paths.train_images.iterdir())) == small_shapes.num_train
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def _generate(root: str, cfg: dict) -> str:
    return str(generate_shapes(Path(root), ShapesConfig(**cfg)).train_ann)


def test_two_racing_processes_both_get_a_valid_folder(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    cfg = vars(small_shapes)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.starmap(_generate, [(str(tmp_path), cfg)] * 2)
    assert results[0] == results[1]
    assert [p.name for p in tmp_path.iterdir()] == [f"shapes-{shapes_hash(small_shapes)}"]
    load_coco_json(results[0])


def test_hash_is_the_same_from_yaml_ints_and_the_dataclass(small_shapes: ShapesConfig) -> None:
    node = OmegaConf.create({**vars(small_shapes), "noise": 8})  # YAML often drops the ".0"
    assert shapes_hash(node) == shapes_hash(small_shapes)
    assert shapes_hash(replace(small_shapes, max_objects=4)) != shapes_hash(small_shapes)


def test_writes_valid_coco(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    paths = generate_shapes(tmp_path, small_shapes)
    data = load_coco_json(paths.train_ann)  # our schema checks
    assert data["info"] and data["licenses"] == []
    assert [c["id"] for c in data["categories"]] == list(range(1, len(CATEGORIES) + 1))
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(paths.train_ann))
    assert len(coco.getImgIds()) == small_shapes.num_train
    for ann in data["annotations"]:
        image = coco.imgs[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= image["width"] and y + h <= image["height"]
        assert 0 < ann["area"] <= w * h and ann["iscrowd"] == 0


def test_objects_vary_in_count_aspect_class_and_size(tmp_path: Path) -> None:
    cfg = ShapesConfig(num_train=120, num_val=1)
    data = json.loads(generate_shapes(tmp_path, cfg).train_ann.read_text())
    counts = Counter(a["image_id"] for a in data["annotations"])
    per_image = [counts[image["id"]] for image in data["images"]]
    assert min(per_image) >= cfg.min_objects and max(per_image) <= cfg.max_objects
    assert len(set(per_image)) >= 4
    aspect = np.array([a["bbox"][2] / a["bbox"][3] for a in data["annotations"]])
    assert (aspect < 0.5).mean() > 0.05 and (aspect > 2.0).mean() > 0.05
    assert {a["category_id"] for a in data["annotations"]} == set(range(1, len(CATEGORIES) + 1))
    sides = np.sqrt([a["bbox"][2] * a["bbox"][3] for a in data["annotations"]])
    assert sides.min() < 16 and sides.max() > 40


def test_boxes_overlap_partly_but_never_above_the_iou_cap(tmp_path: Path) -> None:
    data = json.loads(generate_shapes(tmp_path, ShapesConfig(num_train=150, num_val=1)).train_ann.read_text())
    by_image: dict[int, list[list[float]]] = {}
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        by_image.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
    ious = [
        box_iou(torch.tensor([a]), torch.tensor([b])).item()
        for boxes in by_image.values()
        for a, b in itertools.combinations(boxes, 2)
    ]
    assert max(ious) <= MAX_IOU + 1e-6
    assert sum(iou > 0 for iou in ious) >= 10  # overlaps do happen


def test_ground_truth_as_detections_scores_ap_one(tmp_path: Path, small_shapes: ShapesConfig) -> None:
    """The evaluation GT of the dataset works with COCOeval end to end."""
    paths = generate_shapes(tmp_path, small_shapes)
    dataset = CocoDetection(paths.val_images, paths.val_ann)
    gt = dataset.coco
    detections = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt.dataset["annotations"]
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == 1.0
