"""COCO evaluation: pycocotools vs ``eval.backend=faster_coco_eval`` on the same synthetic detections.

A synthetic COCO set is generated in memory (GT boxes per image, 100 detections per image: jittered copies of
the GT with some wrong labels plus random boxes), then ``ablate.engine.coco_eval.evaluate_detections`` runs it
with each backend. The 12 stats must be identical; the time ratio is the result.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from bench_common import write_result

from ablate.engine.coco_eval import STAT_NAMES, evaluate_detections

TARGET = 2.0  # faster_coco_eval at least 2× faster


def synthetic_coco(num_images: int, boxes_per_image: int = 7, dets_per_image: int = 100, seed: int = 0
                   ) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    cats = [{"id": i, "name": f"c{i}"} for i in range(1, 81)]
    images, anns, dets = [], [], []
    for img in range(1, num_images + 1):
        images.append({"id": img, "width": 640, "height": 480})
        n = max(1, int(rng.poisson(boxes_per_image)))
        wh = rng.uniform(8, 300, (n, 2))
        xy = rng.uniform(0, 1, (n, 2)) * (np.array([640, 480]) - wh)
        labels = rng.integers(1, 81, n)
        for (x, y), (w, h), c in zip(xy, wh, labels):
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": int(c), "bbox": [x, y, w, h],
                         "area": float(w * h), "iscrowd": 0})
        # detections: noisy copies of the GT (some with a wrong class), the rest random, random scores
        k = dets_per_image
        src = rng.integers(0, n, k)
        jitter = rng.normal(0, 0.1, (k, 4)) * np.concatenate([wh[src], wh[src]], 1)
        boxes = np.concatenate([xy[src], wh[src]], 1) + jitter
        random_rows = rng.uniform(0, 1, k) < 0.4
        boxes[random_rows] = np.concatenate([rng.uniform(0, 400, (random_rows.sum(), 2)),
                                             rng.uniform(8, 200, (random_rows.sum(), 2))], 1)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], 1.0)
        det_labels = np.where(rng.uniform(0, 1, k) < 0.2, rng.integers(1, 81, k), labels[src])
        scores = rng.uniform(0, 1, k)
        for b, c, s in zip(boxes.tolist(), det_labels.tolist(), scores.tolist()):
            dets.append({"image_id": img, "category_id": int(c), "bbox": b, "score": s})
    gt = {"images": images, "annotations": anns, "categories": cats, "info": {}, "licenses": []}
    return gt, dets


def run(quick: bool) -> dict[str, Any]:
    num_images = 1000 if quick else 5000
    gt, dets = synthetic_coco(num_images)
    times: dict[str, list[float]] = {"pycocotools": [], "faster_coco_eval": []}
    results: dict[str, dict[str, float]] = {}
    for _ in range(1 if quick else 2):  # alternate the backends
        for backend in times:
            t0 = time.perf_counter()
            results[backend] = evaluate_detections(gt, dets, backend=backend)
            times[backend].append(time.perf_counter() - t0)
    a, b = results["pycocotools"], results["faster_coco_eval"]
    diff = max(abs(a[k] - b[k]) for k in STAT_NAMES)
    assert diff <= 1e-9, f"backends disagree by {diff}: {a} vs {b}"
    best = {k: min(v) for k, v in times.items()}
    out = {"images": num_images, "gt_boxes": len(gt["annotations"]), "detections": len(dets), "times_s": times,
           "stats": a, "max_stat_diff": diff, "speedup": best["pycocotools"] / best["faster_coco_eval"]}
    md = "\n".join([
        "## COCO evaluation backends (same detections)",
        "",
        f"{num_images:,} synthetic images, {len(gt['annotations']):,} GT boxes, {len(dets):,} detections "
        f"(100 per image); AP = {a['AP']:.4f} from both backends (max difference over the 12 stats: {diff:.1e}).",
        "",
        "| backend | time (best of runs) |",
        "|---|---|",
        f"| pycocotools | {best['pycocotools']:.1f} s |",
        f"| faster_coco_eval | {best['faster_coco_eval']:.1f} s |",
        f"| speed-up | {out['speedup']:.1f}× ({'meets' if out['speedup'] >= TARGET else 'misses'} the ≥ {TARGET}× target) |",
        "",
        "Time = `evaluate_detections` end to end (GT index, loadRes, evaluate, accumulate, summarize).",
    ])
    write_result("coco_eval", out, md)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    print(run(a.quick)["speedup"])
