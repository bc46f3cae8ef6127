"""COCO bbox evaluation: pycocotools (the reference) or faster-coco-eval, with the same numbers.

Wraps the known pitfalls of the COCO API so callers don't have to:

- ``loadRes([])`` raises IndexError in pycocotools; empty detections are evaluated against an empty
  result set instead, which gives COCO's own answer (0 where there is ground truth).
- pycocotools 2.0.9/2.0.10 raise ``KeyError: 'info'`` when the GT json lacks ``info``; defaults are added.
- ``loadRes`` mutates the result dicts it is given (adds ``segmentation``, ``area``, ``id``); we pass copies.
- faster-coco-eval's ``COCOeval_faster`` defaults to ``iouType="segm"``; we always ask for ``"bbox"``.
- Detections whose ``category_id`` is not a GT category are silently ignored by COCOeval (the classic
  contiguous-label vs dataset-id bug shows up as AP ~ 0); we warn.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ablate.registry import Choice

log = logging.getLogger(__name__)

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


class EvalBackend(Choice):
    """``eval.backend``: pycocotools (the reference) or faster-coco-eval (same numbers, faster)."""

    pycocotools = "pycocotools"
    faster_coco_eval = "faster_coco_eval"


BACKENDS = tuple(b.value for b in EvalBackend)


@dataclass
class CocoEvaluation:
    """The 12 COCO stats (see ``evaluate_detections``) and, from the same COCOeval, AP and AP50 per category:
    ``[{"id", "name", "AP", "AP50"}]`` in category-id order, ``None`` where COCO's answer is undefined (no GT)."""

    stats: dict[str, float]
    per_class: list[dict[str, Any]] = field(default_factory=list)


def evaluate_detections(
    gt: Any,
    detections: list[dict],
    backend: str = "pycocotools",
    image_ids: Sequence[int] | None = None,
) -> dict[str, float]:
    """The 12 COCO stats of ``evaluate_coco`` (which also gives AP per category)."""
    return evaluate_coco(gt, detections, backend, image_ids).stats


def evaluate_coco(
    gt: Any,
    detections: list[dict],
    backend: str = "pycocotools",
    image_ids: Sequence[int] | None = None,
) -> CocoEvaluation:
    """Evaluate COCO-format bbox detections: the 12 COCO stats (``STAT_NAMES``) as fractions, and per-class AP.

    Args:
        gt: a ``pycocotools.coco.COCO`` / ``faster_coco_eval.COCO`` object, a COCO dataset dict, or a
            path to a COCO json. Annotations missing ``iscrowd``/``area`` get ``0`` / bbox area.
        detections: COCO results dicts (``image_id``, ``category_id``, ``bbox`` xywh, ``score``); not mutated.
        backend: ``"pycocotools"`` (reference) or ``"faster_coco_eval"`` (same numbers, faster).
        image_ids: evaluate only these images (e.g. when a subset of the split was run: otherwise
            every un-run image counts its GT as missed). Detections on other images are dropped.

    Returns:
        ``stats``: ``{name: value}``. A stat whose area range has no GT box (COCO's ``-1``, e.g. ``APs`` on a
        set without small objects, or every stat when the ground truth has no boxes at all) is
        ``float("nan")``, not 0: COCO's answer is undefined, and means over runs stay honest.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown COCO eval backend {backend!r}; valid: {', '.join(BACKENDS)}")
    coco_cls, eval_cls = _backend_classes(backend)

    dataset = _load_gt_dataset(gt)
    gt_image_ids = {img["id"] for img in dataset["images"]}
    if image_ids is not None:
        image_ids = sorted({int(i) for i in image_ids})
        unknown = set(image_ids) - gt_image_ids
        if unknown:
            raise ValueError(f"image_ids not in the ground truth: {sorted(unknown)[:10]}")
        keep = set(image_ids)
        detections = [d for d in detections if d["image_id"] in keep]
    _check_detections(detections, gt_image_ids, {c["id"] for c in dataset.get("categories", [])})

    out = io.StringIO()
    lines: list[str] = []
    # pycocotools prints unconditionally; faster-coco-eval takes a print_function. Capture both.
    with contextlib.redirect_stdout(out):
        coco_gt = _backend_coco(gt, dataset, coco_cls, backend, lines)
        coco_dt = _load_results(coco_gt, dataset, detections, coco_cls, backend, lines)
        if backend == "pycocotools":
            coco_eval = eval_cls(coco_gt, coco_dt, iouType="bbox")
        else:
            coco_eval = eval_cls(coco_gt, coco_dt, iouType="bbox", print_function=_line_sink(lines))
        if image_ids is not None:
            coco_eval.params.imgIds = list(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    summary = (out.getvalue() + "\n".join(lines)).strip()
    log.debug("COCO bbox evaluation (%s, %d detections):\n%s", backend, len(detections), summary)

    stats: dict[str, float] = {}
    for name, value in zip(STAT_NAMES, list(coco_eval.stats)[: len(STAT_NAMES)]):
        value = float(value)
        stats[name] = math.nan if value < 0 else value  # COCO's -1: "no GT in this range", undefined
    if math.isnan(stats["AP"]):
        log.warning("the COCO ground truth has no boxes to evaluate against: AP and AR are undefined (NaN, "
                    "null in result.json), not 0")
    return CocoEvaluation(stats, per_class_ap(coco_eval, dataset))


def per_class_ap(coco_eval: Any, dataset: dict) -> list[dict[str, Any]]:
    """AP (IoU .50:.95) and AP50 of each category, as ``summarize`` computes the overall ones but for one class:
    the mean of the accumulated precision over IoU thresholds and recall points, all areas, 100 detections."""
    precision = np.asarray(coco_eval.eval["precision"])  # (IoU thresholds, recall points, classes, areas, maxDets)
    names = {c["id"]: c.get("name", str(c["id"])) for c in dataset.get("categories", [])}
    area = list(coco_eval.params.areaRngLbl).index("all")
    max_dets = list(coco_eval.params.maxDets).index(100)
    at50 = int(np.argmin(np.abs(np.asarray(coco_eval.params.iouThrs) - 0.5)))
    rows = []
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k, area, max_dets]
        rows.append({"id": int(cat_id), "name": names.get(cat_id, str(cat_id)),
                     "AP": _defined_mean(p), "AP50": _defined_mean(p[at50])})
    return rows


def _defined_mean(values: np.ndarray) -> float | None:
    """COCO's mean over entries that are not -1 (no GT of this class), or None when none is."""
    values = values[values > -1]
    return float(values.mean()) if values.size else None


def to_coco_results(results: list[dict], image_ids: Sequence[int]) -> list[dict]:
    """Convert post-processed model outputs to COCO results dicts.

    Args:
        results: one dict per image with ``scores`` (N,), ``labels`` (N,) dataset category ids and
            ``boxes`` (N, 4) absolute xyxy (torch tensors or anything with ``.tolist()``).
        image_ids: the dataset image id of each entry of ``results``.

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`` with plain python types
        (json-serialisable, as ``detections.json`` and ``loadRes`` expect).
    """
    if len(results) != len(image_ids):
        raise ValueError(f"{len(results)} results but {len(image_ids)} image ids")
    coco: list[dict] = []
    for image_id, res in zip(image_ids, results):
        # One .tolist() per tensor: per-element .item() calls are ~100x slower on big val sets.
        scores = _tolist(res["scores"])
        labels = _tolist(res["labels"])
        boxes = _tolist(res["boxes"])
        for score, label, (x0, y0, x1, y1) in zip(scores, labels, boxes):
            coco.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(label),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "score": float(score),
                }
            )
    return coco


# --------------------------------------------------------------------------------------------- helpers


def _tolist(x: Any) -> list:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return x.tolist() if hasattr(x, "tolist") else list(x)


def _backend_classes(backend: str) -> tuple[type, type]:
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError as e:
        raise ImportError(
            "eval backend 'faster_coco_eval' needs the faster-coco-eval package: "
            "pip install faster-coco-eval (or pip install 'ablate[fast]')"
        ) from e
    return COCO, COCOeval_faster


def _load_gt_dataset(gt: Any) -> dict:
    """The GT dataset dict, with the defaults older pycocotools and COCOeval need filled in place."""
    if isinstance(gt, (str, os.PathLike)):
        with open(Path(gt)) as f:
            dataset = json.load(f)
    elif isinstance(gt, dict):
        dataset = gt
    elif hasattr(gt, "dataset"):
        dataset = gt.dataset
    else:
        raise TypeError(f"gt must be a COCO object, a dataset dict or a json path, not {type(gt).__name__}")
    # In place: for a COCO object, its index holds the very same annotation dicts.
    dataset.setdefault("info", {})
    dataset.setdefault("licenses", [])
    for ann in dataset.get("annotations", []):
        ann.setdefault("iscrowd", 0)  # pycocotools indexes gt["iscrowd"] directly
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
    return dataset


def _line_sink(lines: list[str]):
    return lambda *args, **_: lines.append(" ".join(str(a) for a in args))


def _backend_coco(gt: Any, dataset: dict, coco_cls: type, backend: str, lines: list[str]) -> Any:
    if isinstance(gt, coco_cls):
        return gt
    coco = coco_cls() if backend == "pycocotools" else coco_cls(print_function=_line_sink(lines))
    coco.dataset = dataset
    coco.createIndex()
    return coco


def _load_results(
    coco_gt: Any, dataset: dict, detections: list[dict], coco_cls: type, backend: str, lines: list[str]
) -> Any:
    if detections:
        # loadRes writes segmentation/area/id into each dict: hand it copies.
        return coco_gt.loadRes([{**d, "bbox": list(d["bbox"])} for d in detections])
    # pycocotools' loadRes([]) raises IndexError (cocoapi#450); an empty result set evaluates fine.
    coco_dt = coco_cls() if backend == "pycocotools" else coco_cls(print_function=_line_sink(lines))
    coco_dt.dataset = {
        "info": {},
        "images": list(dataset["images"]),
        "categories": list(dataset.get("categories", [])),
        "annotations": [],
    }
    coco_dt.createIndex()
    return coco_dt


def _check_detections(detections: list[dict], gt_image_ids: set[int], gt_cat_ids: set[int]) -> None:
    bad_images = {d["image_id"] for d in detections} - gt_image_ids
    if bad_images:
        # loadRes would fail with a bare AssertionError.
        raise ValueError(f"detections refer to images not in the ground truth: {sorted(bad_images)[:10]}")
    bad_cats = [d["category_id"] for d in detections if d["category_id"] not in gt_cat_ids]
    if bad_cats:
        log.warning(
            "%d of %d detections have category ids not in the ground truth (e.g. %s); COCOeval ignores "
            "them. Are labels contiguous indices instead of dataset category ids?",
            len(bad_cats),
            len(detections),
            sorted(set(bad_cats))[:5],
        )
