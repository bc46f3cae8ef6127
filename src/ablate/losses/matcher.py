"""Hungarian matching of predictions to targets, batched over images and decoder layers.

The cost of every (layer, image, query, target) is computed in one tensor pass; only the assignment itself
(scipy's ``linear_sum_assignment``) runs per layer and image, on CPU, after a single device-to-host copy.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchvision.ops import box_convert, generalized_box_iou

Indices = list[tuple[Tensor, Tensor]]  # per image: (query indices, target indices)


class HungarianMatcher:
    def __init__(self, cost_class: float, cost_bbox: float, cost_giou: float, focal: bool,
                 alpha: float = 0.25, gamma: float = 2.0):
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("loss.cost_class, cost_bbox and cost_giou cannot all be 0")
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou
        self.focal, self.alpha, self.gamma = focal, alpha, gamma

    @torch.no_grad()
    def cost_matrix(self, logits: Tensor, boxes: Tensor, labels: Tensor, target_boxes: Tensor) -> Tensor:
        """logits (L, B, Q, K), boxes (L, B, Q, 4) cxcywh; all targets concatenated → cost (L, B, Q, T)."""
        n_layers, b, q, _ = logits.shape
        logits, boxes = logits.flatten(1, 2).float(), boxes.flatten(1, 2).float()
        if self.focal:  # the focal-loss cost of Deformable / Conditional DETR, on the target classes only
            p = logits[..., labels].sigmoid()
            pos = self.alpha * (1 - p) ** self.gamma * -(p + 1e-8).log()
            neg = (1 - self.alpha) * p**self.gamma * -(1 - p + 1e-8).log()
            cost_class = pos - neg
        else:  # DETR: −p(target class) under the softmax
            cost_class = -logits.softmax(-1)[..., labels]
        cost_bbox = torch.cdist(boxes, target_boxes.float().expand(n_layers, -1, -1), p=1)
        giou = generalized_box_iou(box_convert(boxes.flatten(0, 1), "cxcywh", "xyxy"),
                                   box_convert(target_boxes.float(), "cxcywh", "xyxy"))
        cost = self.cost_bbox * cost_bbox + self.cost_class * cost_class - self.cost_giou * giou.view_as(cost_bbox)
        return cost.view(n_layers, b, q, -1)

    @torch.no_grad()
    def __call__(self, logits: Tensor, boxes: Tensor, targets: list[dict]) -> list[Indices]:
        """Match every layer: logits (L, B, Q, K), boxes (L, B, Q, 4) → per layer, per image (query_idx, target_idx)."""
        sizes = [len(t["labels"]) for t in targets]
        empty = (torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64))
        if sum(sizes) == 0:
            return [[empty] * len(targets) for _ in range(logits.shape[0])]
        labels = torch.cat([t["labels"] for t in targets])
        target_boxes = torch.cat([t["boxes"] for t in targets])
        cost = self.cost_matrix(logits, boxes, labels, target_boxes).cpu().numpy()
        bounds = np.cumsum([0, *sizes])
        out = []
        for layer_cost in cost:
            per_image = []
            for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                if hi == lo:
                    per_image.append(empty)
                    continue
                rows, cols = linear_sum_assignment(layer_cost[i, :, lo:hi])
                per_image.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
            out.append(per_image)
        return out
