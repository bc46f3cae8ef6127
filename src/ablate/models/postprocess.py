"""Model outputs → detections in image pixels (the authors' ``PostProcess``)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_convert


@torch.no_grad()
def postprocess(outputs: dict, target_sizes: Tensor, *, focal: bool, top_k: int = 100,
                valid_classes: Tensor | None = None) -> list[dict[str, Tensor]]:
    """target_sizes (B, 2) as (h, w) of the original images → per image ``scores``, ``labels`` (class ids),
    ``boxes`` (absolute xyxy) and ``query_index``.

    focal: the top-k (query, class) pairs over all sigmoid scores, so one query may give several labels.
    softmax: one detection per query, its best class other than no-object.
    ``valid_classes`` (K,) bool: only these class ids are ranked, so unused ids never take a top-k slot.
    """
    logits, boxes = outputs["pred_logits"].float(), outputs["pred_boxes"].float()
    b, q, _ = logits.shape
    if focal:
        prob = logits.sigmoid()
        class_ids = torch.arange(prob.shape[-1], device=prob.device)
        if valid_classes is not None:  # rank only the ids the data set uses
            class_ids = class_ids[valid_classes.to(prob.device)]
            prob = prob[..., class_ids]
        k = prob.shape[-1]
        scores, index = prob.flatten(1).topk(min(top_k, q * k), dim=1)
        query, labels = index // k, class_ids[index % k]
    else:
        prob = logits.softmax(-1)[..., :-1]
        if valid_classes is not None:
            prob = prob.masked_fill(~valid_classes, 0.0)
        scores, labels = prob.max(-1)
        query = torch.arange(q, device=logits.device).expand(b, -1)
    h, w = target_sizes.unbind(1)
    scale = torch.stack([w, h, w, h], dim=1).to(boxes)
    xyxy = box_convert(boxes, "cxcywh", "xyxy") * scale[:, None, :]
    xyxy = torch.gather(xyxy, 1, query.unsqueeze(-1).expand(-1, -1, 4))
    return [{"scores": s, "labels": lab, "boxes": bx, "query_index": qi}
            for s, lab, bx, qi in zip(scores, labels, xyxy, query)]
