"""COCO evaluation wrapper: hand-checked AP values, pycocotools pitfalls, backend agreement."""

from __future__ import annotations

import json
import logging
import math
import sys

import numpy as np
import pytest
import torch

from ablate.engine.coco_eval import STAT_NAMES, evaluate_detections, to_coco_results

BACKENDS = ["pycocotools", "faster_coco_eval"]


def make_gt(annotations: list[dict], n_images: int = 3, with_info: bool = False) -> dict:
    """A COCO dataset dict; ``annotations`` are (image_id, category_id, bbox[, iscrowd]) dicts."""
    anns = []
    for i, a in enumerate(annotations, start=1):
        x, y, w, h = a["bbox"]
        anns.append(
            {
                "id": i,
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": a.get("iscrowd", 0),
            }
        )
    gt = {
        "images": [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in range(1, n_images + 1)],
        "categories": [{"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}],  # non-contiguous ids on purpose
        "annotations": anns,
    }
    if with_info:
        gt["info"], gt["licenses"] = {}, []
    return gt


# Medium (32^2..96^2) and large (>96^2) boxes on three images, two categories; no small ones.
GT_BOXES = [
    {"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 60]},
    {"image_id": 1, "category_id": 7, "bbox": [200, 100, 150, 120]},
    {"image_id": 2, "category_id": 1, "bbox": [300, 300, 80, 40]},
    {"image_id": 3, "category_id": 7, "bbox": [50, 50, 200, 200]},
]


# pycocotools computes precision as tp / (tp + fp + eps), so a perfect AP can be 1 - 2e-16.
ONE = pytest.approx(1.0, abs=1e-12)


def perfect(gt_boxes: list[dict], score: float = 0.9) -> list[dict]:
    return [{"image_id": b["image_id"], "category_id": b["category_id"], "bbox": list(b["bbox"]), "score": score}
            for b in gt_boxes]


@pytest.fixture
def gt_path(tmp_path):
    # No "info"/"licenses": pycocotools 2.0.9/2.0.10 raise KeyError('info') on such files.
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(make_gt(GT_BOXES)))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_perfect_detections(gt_path, backend):
    dets = perfect(GT_BOXES)
    stats = evaluate_detections(gt_path, dets, backend=backend)
    assert list(stats) == list(STAT_NAMES)
    assert stats["AP"] == ONE and stats["AP50"] == ONE and stats["AP75"] == ONE
    assert stats["APm"] == ONE and stats["APl"] == ONE and stats["AR100"] == ONE
    # No small GT box: COCO's -1 becomes NaN, not 0.
    assert math.isnan(stats["APs"]) and math.isnan(stats["ARs"])
    assert "segmentation" not in dets[0]  # loadRes got copies


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("fp_score", "expected_ap"),
    [
        # TP (score .9) then FP (.8): precision [1, .5] at recall [.5, .5]. The 101-point interpolation
        # takes the max precision at recall >= r: 1.0 for the 51 thresholds r = 0.00..0.50, 0 for the
        # 50 above -> AP = 51/101 at every IoU threshold (the match has IoU 1).
        (0.8, 51 / 101),
        # FP ranked first: precision [0, .5] -> envelope 0.5 for r <= .5 -> AP = 0.5 * 51/101.
        (0.95, 0.5 * 51 / 101),
    ],
)
def test_hand_computed_ap(backend, fp_score, expected_ap):
    gt = make_gt([
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 100]},
        {"image_id": 1, "category_id": 1, "bbox": [300, 200, 100, 100]},  # missed
    ], n_images=1)
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 100], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [500, 10, 100, 100], "score": fp_score},  # no overlap
    ]
    stats = evaluate_detections(gt, dets, backend=backend)
    assert stats["AP"] == pytest.approx(expected_ap, abs=1e-12)
    assert stats["AP50"] == pytest.approx(expected_ap, abs=1e-12)
    assert stats["AR100"] == pytest.approx(0.5, abs=1e-12)
    assert stats["AR1"] == pytest.approx(0.5 if fp_score < 0.9 else 0.0, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_iou_062_counts_at_50_not_75(backend):
    gt = make_gt([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100]}], n_images=1)
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 62, 100], "score": 0.5}]  # IoU 0.62
    stats = evaluate_detections(gt, dets, backend=backend)
    assert stats["AP50"] == ONE
    assert stats["AP75"] == 0.0
    assert stats["AP"] == pytest.approx(0.3, abs=1e-12)  # matched at IoU .50, .55, .60 of ten thresholds


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_detections(gt_path, backend):
    stats = evaluate_detections(gt_path, [], backend=backend)
    assert stats["AP"] == 0.0 and stats["AP50"] == 0.0 and stats["AR100"] == 0.0
    assert stats["APm"] == 0.0 and stats["APl"] == 0.0
    assert math.isnan(stats["APs"])  # still "no small GT", as for any other run


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_ground_truth_boxes_gives_undefined_ap(backend):
    # COCO's -1: with nothing to find, precision and recall are undefined, not 0
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1.0, 1.0, 5.0, 5.0], "score": 0.5}]
    for detections in ([], dets):
        stats = evaluate_detections(make_gt([], n_images=1), detections, backend=backend)
        assert all(math.isnan(v) for v in stats.values()), stats


@pytest.mark.parametrize("backend", BACKENDS)
def test_crowd_region_is_not_a_false_positive(backend):
    boxes = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 100]}]
    crowd = {"image_id": 1, "category_id": 1, "bbox": [300, 200, 200, 150], "iscrowd": 1}
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [320, 220, 60, 60], "score": 0.95},  # inside the crowd
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 100], "score": 0.9},
    ]
    # COCO matches a detection on a crowd region to it and ignores it: AP stays 1.
    assert evaluate_detections(make_gt(boxes + [crowd], n_images=1), dets, backend=backend)["AP"] == ONE
    # Without the crowd annotation the same detection is a top-ranked false positive.
    assert evaluate_detections(make_gt(boxes, n_images=1), dets, backend=backend)["AP"] < 0.6


def random_case(seed: int = 0) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    boxes, dets = [], []
    for image_id in range(1, 9):
        for _ in range(rng.integers(0, 6)):
            w, h = rng.choice([12.0, 40.0, 150.0]) * rng.uniform(0.6, 1.4, size=2)  # small / medium / large
            x, y = rng.uniform(0, 400), rng.uniform(0, 300)
            cat = int(rng.choice([1, 7]))
            boxes.append({"image_id": image_id, "category_id": cat, "bbox": [x, y, w, h]})
            if rng.random() < 0.8:  # jittered hit
                j = rng.normal(0, 0.1, size=4) * [w, h, w, h]
                dets.append({"image_id": image_id, "category_id": cat, "score": float(rng.random()),
                             "bbox": [float(x + j[0]), float(y + j[1]), float(w + j[2]), float(h + j[3])]})
        for _ in range(rng.integers(0, 4)):  # false positives
            dets.append({"image_id": image_id, "category_id": int(rng.choice([1, 7])), "score": float(rng.random()),
                         "bbox": [float(v) for v in rng.uniform([0, 0, 5, 5], [500, 400, 120, 120])]})
    boxes.append({"image_id": 2, "category_id": 1, "bbox": [0, 0, 300, 300], "iscrowd": 1})
    return make_gt(boxes, n_images=9), dets  # image 9: no GT, no detections


def test_backends_agree_on_random_case():
    gt, dets = random_case()
    ref = evaluate_detections(gt, dets, backend="pycocotools")
    fast = evaluate_detections(gt, dets, backend="faster_coco_eval")
    assert 0.0 < ref["AP"] < 1.0
    for name in STAT_NAMES:
        assert fast[name] == pytest.approx(ref[name], abs=1e-9, nan_ok=True), name


def test_image_ids_restricts_evaluation(gt_path):
    # Only image 1 was run: the GT of images 2 and 3 must not count as missed.
    dets = perfect([b for b in GT_BOXES if b["image_id"] == 1])
    assert evaluate_detections(gt_path, dets)["AP"] < 1.0
    assert evaluate_detections(gt_path, dets, image_ids=[1])["AP"] == ONE
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_detections(gt_path, dets, image_ids=[42])


def test_accepts_coco_objects_and_gt_without_info(gt_path):
    from pycocotools.coco import COCO

    gt = make_gt(GT_BOXES)
    for ann in gt["annotations"]:  # files without iscrowd/area are common in hand-made sets
        del ann["iscrowd"], ann["area"]
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    for backend in BACKENDS:  # a pycocotools object also works with the other backend
        assert evaluate_detections(coco, perfect(GT_BOXES), backend=backend)["AP"] == ONE


def test_output_silenced_and_logged(gt_path, capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="ablate.engine.coco_eval"):
        evaluate_detections(gt_path, perfect(GT_BOXES))
    assert capsys.readouterr().out == ""
    assert "Average Precision" in caplog.text


def test_unknown_category_warns(gt_path, caplog):
    dets = [{**d, "category_id": 0} for d in perfect(GT_BOXES)]
    with caplog.at_level(logging.WARNING, logger="ablate.engine.coco_eval"):
        assert evaluate_detections(gt_path, dets)["AP"] == 0.0
    assert "category ids not in the ground truth" in caplog.text


def test_errors(gt_path, monkeypatch):
    with pytest.raises(ValueError, match="pycocotools, faster_coco_eval"):
        evaluate_detections(gt_path, [], backend="detectron2")
    with pytest.raises(ValueError, match="images not in the ground truth"):
        evaluate_detections(gt_path, [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # import now raises ImportError
    with pytest.raises(ImportError, match="pip install faster-coco-eval"):
        evaluate_detections(gt_path, [], backend="faster_coco_eval")


def test_to_coco_results():
    results = [
        {"scores": torch.tensor([0.9, 0.1]), "labels": torch.tensor([7, 1]),
         "boxes": torch.tensor([[10.0, 20.0, 110.0, 70.0], [0.0, 0.0, 5.5, 4.0]])},
        {"scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)},
    ]
    coco = to_coco_results(results, [42, 43])
    assert coco == [
        {"image_id": 42, "category_id": 7, "bbox": [10.0, 20.0, 100.0, 50.0], "score": pytest.approx(0.9)},
        {"image_id": 42, "category_id": 1, "bbox": [0.0, 0.0, 5.5, 4.0], "score": pytest.approx(0.1)},
    ]
    assert all(type(v) in (int, float, list) for d in coco for v in d.values())
    json.dumps(coco)
    with pytest.raises(ValueError):
        to_coco_results(results, [1])


def test_round_trip_perfect_model_outputs(gt_path):
    # to_coco_results -> evaluate_detections, as the engine chains them.
    gt = make_gt(GT_BOXES)
    results, ids = [], []
    for image in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        results.append({"scores": torch.full((len(anns),), 0.5), "labels": torch.tensor([a["category_id"] for a in anns]),
                        "boxes": torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4)})
        ids.append(image["id"])
    assert evaluate_detections(gt_path, to_coco_results(results, ids))["AP"] == ONE


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_class_ap_hand_checked(backend):
    """cat: one box found at IoU 0.52 (AP50 1, AP 1/10: only the 0.50 threshold passes) and one exactly; dog:
    nothing found (0, not undefined); bird: no GT at all (None, COCO's -1)."""
    from ablate.engine.coco_eval import evaluate_coco

    gt = make_gt(GT_BOXES)
    gt["categories"].append({"id": 9, "name": "bird"})
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 31], "score": 0.9},  # IoU 1550/3000
            {"image_id": 2, "category_id": 1, "bbox": [300, 300, 80, 40], "score": 0.8}]
    result = evaluate_coco(gt, dets, backend=backend)
    by_name = {row["name"]: row for row in result.per_class}
    assert [row["id"] for row in result.per_class] == [1, 7, 9]
    # two GT cats, both found at 0.50 (AP50 1); at 0.55..0.95 the higher-scored box is a false positive, so
    # precision 1/2 up to recall 1/2: 51 of the 101 recall points at 0.5
    assert by_name["cat"]["AP50"] == ONE
    assert by_name["cat"]["AP"] == pytest.approx((1.0 + 9 * 0.5 * 51 / 101) / 10, abs=1e-12)
    assert by_name["dog"] == {"id": 7, "name": "dog", "AP": 0.0, "AP50": 0.0}
    assert by_name["bird"]["AP"] is None and by_name["bird"]["AP50"] is None
    # the overall AP is COCO's mean over the classes that have GT
    assert result.stats["AP"] == pytest.approx((by_name["cat"]["AP"] + 0.0) / 2, abs=1e-12)
    assert result.stats["AP50"] == pytest.approx(0.5, abs=1e-12)
