"""COCO evaluation of a detector over a validation loader (every image once, across ranks)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ablate.engine.coco_eval import evaluate_detections, to_coco_results
from ablate.engine.distributed import Dist, broadcast_buffers, broadcast_object, gather_to_main
from ablate.models.postprocess import postprocess


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, *, focal: bool, top_k: int,
            valid_classes: torch.Tensor | None, amp: bool = False, progress: bool = True) -> list[dict]:
    """COCO-format detections (original image pixels, the data set's category ids) for this rank's images."""
    model.eval()
    detections, seen = [], set()
    for images, mask, targets in tqdm(loader, desc="eval", leave=False, disable=not progress):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            outputs = model(images.to(device, non_blocking=True), mask.to(device, non_blocking=True))
        sizes = torch.stack([t["orig_size"] for t in targets]).to(device)
        vc = valid_classes.to(device) if valid_classes is not None else None
        results = postprocess(outputs, sizes, focal=focal, top_k=top_k, valid_classes=vc)
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


def evaluate(model: nn.Module, loader: DataLoader, coco_gt, device: torch.device, d: Dist, *, focal: bool,
             top_k: int, backend: str, valid_classes: torch.Tensor | None, amp: bool = False,
             progress: bool = True) -> tuple[dict[str, float], list[dict]]:
    """Stats (AP … ARl as fractions), computed on rank 0 and returned on every rank, and all detections (rank 0;
    ``[]`` on the other ranks). Every validation image is counted once, whatever the world size."""
    broadcast_buffers(model, d)
    with preserved_rng(device):
        local = predict(model, loader, device, focal=focal, top_k=top_k, valid_classes=valid_classes, amp=amp,
                        progress=progress)
    detections: list[dict] = []
    owner: dict[int, int] = {}
    for rank, part in enumerate(gather_to_main(local, d)):  # an image on two ranks (sampler padding) counts once
        for det in part:
            if owner.setdefault(det["image_id"], rank) == rank:
                detections.append(det)
    stats = evaluate_detections(coco_gt, detections, backend=backend) if d.is_main else {}
    return broadcast_object(stats, d), detections  # type: ignore[return-value]
