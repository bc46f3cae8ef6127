"""The validation panel: fixed images that have boxes, GT boxes exactly the data set's, predictions ranked."""

from __future__ import annotations

import pytest
import torch

from ablate.config import compose
from ablate.data import build_datasets
from ablate.models.builder import build_model
from ablate.runs.panel import MAX_PREDICTIONS, build_panels, panel_indices
from tests.tiny import TINY


@pytest.fixture(scope="module")
def val_and_model(tmp_path_factory):
    cfg = compose([*TINY, f"data.root={tmp_path_factory.mktemp('shapes')}"])
    train_ds, val_ds = build_datasets(cfg.data)
    torch.manual_seed(0)
    return val_ds, build_model(cfg, num_classes=train_ds.num_classes).eval()


def test_panel_matches_the_ground_truth_and_ranks_predictions(val_and_model):
    val_ds, model = val_and_model
    indices = panel_indices(val_ds, 4)
    assert indices == panel_indices(val_ds, 4) and len(indices) == 4  # fixed: the same at every evaluation
    panels = build_panels(model, val_ds, indices, focal=True, device=torch.device("cpu"),
                          class_names=val_ds.category_names)
    for index, panel in zip(indices, panels):
        info = val_ds.coco.imgs[val_ds.image_ids[index]]
        anns = val_ds.coco.imgToAnns[info["id"]]
        expected = sorted((a["bbox"][0] / info["width"], a["bbox"][1] / info["height"],
                           (a["bbox"][0] + a["bbox"][2]) / info["width"], (a["bbox"][1] + a["bbox"][3]) / info["height"],
                           a["category_id"]) for a in anns)
        got = sorted((b["position"]["minX"], b["position"]["minY"], b["position"]["maxX"], b["position"]["maxY"],
                      b["class_id"]) for b in panel.gt_boxes)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g[:4] == pytest.approx(e[:4], abs=1e-4) and g[4] == e[4]
        assert {b["box_caption"] for b in panel.gt_boxes} <= set(val_ds.category_names.values())
        scores = [b["scores"]["score"] for b in panel.pred_boxes]
        assert len(scores) == MAX_PREDICTIONS and scores == sorted(scores, reverse=True)
        assert {b["class_id"] for b in panel.pred_boxes} <= set(val_ds.category_ids)
        assert all(0 <= v <= 1 for b in panel.pred_boxes for v in b["position"].values())
        assert panel.image.dtype.name == "uint8" and panel.image.shape[2] == 3
        assert panel.caption == f"image {info['id']}"
