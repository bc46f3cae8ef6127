"""The reported AP is what plain pycocotools says about the run's detections.json and the data set's own
annotation file, whatever the evaluation backend and top-k."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ablate.app import run_job
from ablate.config import compose
from ablate.data import CocoDetection
from ablate.engine.coco_eval import STAT_NAMES, evaluate_detections
from tests.tiny import TINY


def plain_pycocotools(ann_file: Path, detections: list[dict]) -> dict[str, float]:
    """What a user types: COCO(file), loadRes, evaluate, summarize."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(detections), iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(STAT_NAMES, (float(v) for v in ev.stats)))


def awkward_set(folder: Path) -> Path:
    """Boxes that stick out of their images, a degenerate box, and some without an area."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(1, 7):
        Image.new("RGB", (64, 48)).save(folder / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 48})
        for k in range(3):
            x, y = rng.uniform(-10, 50), rng.uniform(-10, 40)
            w, h = rng.uniform(8, 30, 2)
            ann = {"id": 10 * i + k, "image_id": i, "category_id": 1 + k % 2, "bbox": [x, y, w, h], "iscrowd": 0}
            if k != 2:
                ann["area"] = float(w * h)
            annotations.append(ann)
    annotations[0]["bbox"][2] = 0.0  # degenerate: training drops it, COCO's evaluation counts it
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}))
    return path


@pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval"])
def test_evaluation_ground_truth_is_the_annotation_file(tmp_path, backend):
    if backend == "faster_coco_eval":
        pytest.importorskip("faster_coco_eval")
    ann_file = awkward_set(tmp_path / "set")
    data = json.loads(ann_file.read_text())
    for ann in data["annotations"]:  # plain pycocotools needs an area on every box
        ann.setdefault("area", ann["bbox"][2] * ann["bbox"][3])
    plain_file = tmp_path / "plain.json"
    plain_file.write_text(json.dumps(data))
    rng = np.random.default_rng(1)
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": float(rng.uniform()),
                   "bbox": [float(v + rng.normal(0, 2)) for v in a["bbox"]]} for a in data["annotations"]]
    reported = evaluate_detections(CocoDetection(tmp_path / "set", ann_file).coco, detections, backend=backend)
    expected = plain_pycocotools(plain_file, detections)
    assert 0.05 < expected["AP"] < 0.95  # not a vacuous 0 = 0 or 1 = 1
    assert reported["AP"] == expected["AP"] and reported["AP50"] == expected["AP50"]
    assert reported["AR100"] == expected["AR100"]


@pytest.mark.parametrize("extra", [[], ["eval.top_k=3", "eval.backend=faster_coco_eval"]])
def test_a_runs_ap_is_recomputed_from_its_files(tmp_path, extra):
    if extra:
        pytest.importorskip("faster_coco_eval")
    cfg = compose([*TINY, "logger=none", f"data.root={tmp_path / 'cache'}", "train.max_steps=2", *extra])
    result = run_job(cfg, tmp_path / "run")
    detections = json.loads((tmp_path / "run" / "detections.json").read_text())
    assert detections and len({d["image_id"] for d in detections}) > 1
    ann_file = next((tmp_path / "cache").glob("shapes-*/annotations/instances_val.json"))
    recomputed = plain_pycocotools(ann_file, detections)
    for name in ("AP", "AP50", "AP75"):
        assert result["metrics"][name] == recomputed[name], name
