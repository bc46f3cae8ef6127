"""Losses against hand computations, and the behaviour on empty ground truth."""

import math

import pytest
import torch

from ablate.losses import LossConfig, build_criterion


def one_query_outputs(logit_row, box):
    logits = torch.tensor([[logit_row]], dtype=torch.float32)  # (B=1, Q=1, K)
    boxes = torch.tensor([[box]], dtype=torch.float32)
    return {"pred_logits": logits, "pred_boxes": boxes, "all_logits": logits[None], "all_boxes": boxes[None]}


def test_focal_l1_giou_by_hand():
    crit = build_criterion(LossConfig(), num_classes=2, focal=True)
    out = one_query_outputs([0.5, -1.0], [0.5, 0.5, 0.2, 0.2])
    target = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.55, 0.5, 0.2, 0.4]])}]
    losses = crit(out, target)
    # focal: class 0 is a negative (y=0), class 1 the positive (y=1); α = .25, γ = 2, summed / num_boxes (1)
    p0, p1 = torch.sigmoid(torch.tensor(0.5)), torch.sigmoid(torch.tensor(-1.0))
    fl = 0.75 * p0**2 * -torch.log(1 - p0) + 0.25 * (1 - p1) ** 2 * -torch.log(p1)
    assert float(losses["loss_ce"]) == pytest.approx(float(fl), rel=1e-5)
    assert float(losses["loss_bbox"]) == pytest.approx(0.05 + 0.2, rel=1e-5)
    # boxes [0.4,0.4,0.6,0.6] and [0.45,0.3,0.65,0.7]: inter .15×.2 = .03, union .04+.08−.03 = .09, hull .25×.4 = .1
    giou = 0.03 / 0.09 - (0.1 - 0.09) / 0.1
    assert float(losses["loss_giou"]) == pytest.approx(1 - giou, rel=1e-4)
    assert float(losses["loss"]) == pytest.approx(2 * float(fl) + 5 * 0.25 + 2 * (1 - giou), rel=1e-4)


def test_softmax_ce_with_no_object_weight():
    crit = build_criterion(LossConfig(), num_classes=2, focal=False)
    logits = torch.tensor([[[1.0, 0.0, 0.5], [0.2, 0.3, 2.0]]])  # 2 queries, classes 0, 1 + no-object
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]]])
    out = {"pred_logits": logits, "pred_boxes": boxes, "all_logits": logits[None], "all_boxes": boxes[None]}
    target = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}]
    losses = crit(out, target)
    ls = logits[0].log_softmax(-1)
    expected = (-ls[0, 0] * 1.0 + -ls[1, 2] * 0.1) / 1.1  # query 0 matched to class 0; query 1 is no-object
    assert float(losses["loss_ce"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(losses["loss_bbox"]) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("focal", [True, False])
def test_empty_ground_truth(focal):
    """mmdetection's behavioural check: no targets → classification loss > 0, box losses exactly 0."""
    crit = build_criterion(LossConfig(), num_classes=3, focal=focal)
    torch.manual_seed(0)
    k = 3 if focal else 4
    logits, boxes = torch.randn(3, 2, 4, k), torch.rand(3, 2, 4, 4)
    out = {"pred_logits": logits[-1], "pred_boxes": boxes[-1], "all_logits": logits, "all_boxes": boxes,
           "aux_outputs": [{}, {}]}
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}] * 2
    losses = crit(out, empty)
    assert losses["loss_ce"] > 0 and losses["loss_ce_0"] > 0
    assert losses["loss_bbox"] == 0 and losses["loss_giou_1"] == 0
    assert math.isfinite(float(losses["loss"]))
