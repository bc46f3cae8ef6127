"""COCO evaluation of a detector over a validation loader (every image once, across ranks)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ablate.engine.coco_eval import evaluate_coco, to_coco_results
from ablate.engine.distributed import Dist, broadcast_buffers, broadcast_object, gather_to_main
from ablate.engine.precision import Precision, autocast, to_fp32
from ablate.models.postprocess import postprocess


class Evaluation(NamedTuple):
    stats: dict[str, float]  # AP … ARl as fractions, on every rank
    detections: list[dict]  # all of them on rank 0, [] on the others
    per_class: list[dict[str, Any]]  # [{"id", "name", "AP", "AP50"}] (None: no GT of that class); [] off rank 0


@torch.inference_mode()  # lighter than no_grad (no view or version tracking); only plain lists leave it
def predict(model: nn.Module, loader: DataLoader, device: torch.device, *, top_k: int,
            valid_classes: torch.Tensor | None, precision: Precision = Precision.fp32, progress: bool = True
            ) -> list[dict]:
    """COCO-format detections (original image pixels, the data set's category ids) for this rank's images.
    The loss the model was built for (``model.focal``) decides how its scores are read."""
    model.eval()
    detections, seen = [], set()
    for images, mask, targets in tqdm(loader, desc="eval", leave=False, disable=not progress):
        with autocast(device, precision):
            outputs = to_fp32(model(images.to(device, non_blocking=True), mask.to(device, non_blocking=True)))
        sizes = torch.stack([t["orig_size"] for t in targets]).to(device)
        vc = valid_classes.to(device) if valid_classes is not None else None
        results = postprocess(outputs, sizes, focal=model.focal, top_k=top_k, valid_classes=vc)
        ids = [int(t["image_id"]) for t in targets]
        keep = [i for i, image_id in enumerate(ids) if image_id not in seen]  # samplers pad ranks with repeats
        seen.update(ids)
        detections += to_coco_results([{k: v.cpu() for k, v in results[i].items()} for i in keep],
                                      [ids[i] for i in keep])
    return detections


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Run the body with the global RNGs (torch CPU and CUDA, numpy, random) put back afterwards, so an
    evaluation in the middle of training (the validation transforms draw from torch's RNG) leaves the
    training's augmentation stream, and so the trained weights, as they would be without it."""
    py, npy = random.getstate(), np.random.get_state()
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda" if cuda else None):
        yield
    random.setstate(py)
    np.random.set_state(npy)


def evaluate(model: nn.Module, loader: DataLoader, coco_gt, device: torch.device, d: Dist, *, top_k: int,
             backend: str, valid_classes: torch.Tensor | None, precision: Precision = Precision.fp32,
             progress: bool = True) -> Evaluation:
    """Stats (AP … ARl as fractions), computed on rank 0 and returned on every rank, all detections and AP per
    class (rank 0). Every validation image is counted once, whatever the world size. The global RNGs are left
    as they were (``preserved_rng``)."""
    broadcast_buffers(model, d)
    with preserved_rng(device):
        local = predict(model, loader, device, top_k=top_k, valid_classes=valid_classes, precision=precision,
                        progress=progress)
    detections: list[dict] = []
    owner: dict[int, int] = {}
    for rank, part in enumerate(gather_to_main(local, d)):  # an image on two ranks (sampler padding) counts once
        for det in part:
            if owner.setdefault(det["image_id"], rank) == rank:
                detections.append(det)
    result = evaluate_coco(coco_gt, detections, backend=backend) if d.is_main else None
    stats = broadcast_object(result.stats if result is not None else {}, d)
    return Evaluation(stats, detections, result.per_class if result is not None else [])  # type: ignore[arg-type]
