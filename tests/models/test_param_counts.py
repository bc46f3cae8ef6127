"""The paper's default has exactly the authors' parameter counts; the DETR baseline exactly DETR's."""

import json

import pytest

import ablate
from tests.conftest import FIXTURES

AUTHORS = json.loads((FIXTURES / "param_counts.json").read_text())


def counts(overrides):
    model = ablate.build_model(ablate.compose(["model.num_classes=91", *overrides]))
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad), model


@pytest.mark.parametrize("model,key", [("r50", "R50"), ("r50_dc5", "R50-DC5"), ("r101", "R101"),
                                       ("r101_dc5", "R101-DC5")])
def test_conditional_detr_counts(model, key):
    total, trainable, m = counts([f"model={model}"])
    # the fixture has no R101-DC5 entry; DC5 changes no parameter count (reference_spec §1)
    expected = AUTHORS["ConditionalDETR"][key.removesuffix("-DC5") if key == "R101-DC5" else key]
    assert (total, trainable) == (expected["total"], expected["trainable"])
    by_module = {"backbone": m.backbone, "input_proj": m.input_proj, "class_embed": m.class_embed,
                 "bbox_embed": m.bbox_embed, "query_embed": m.query_embed, "transformer.encoder": m.transformer.encoder}
    for name, module in by_module.items():
        assert sum(p.numel() for p in module.parameters()) == expected["by_module"][name], name
    # the authors' decoder also holds query_scale (T) and ref_point_head (s); ours keeps them in their axes
    decoder = sum(p.numel() for p in m.transformer.decoder.parameters()) + sum(p.numel() for p in m.reference.parameters())
    assert decoder == expected["by_module"]["transformer.decoder"]


def test_detr_r50_counts():
    total, trainable, _ = counts(["model=r50", "csq=detr", "focal=false", "offset=false", "model.num_queries=100"])
    assert (total, trainable) == (41_524_768, 41_302_368)
    assert (total, trainable) == (AUTHORS["DETR"]["R50"]["total"], AUTHORS["DETR"]["R50"]["trainable"])


def test_headline_counts_written_in_the_issue():
    assert counts(["model=r50"])[:2] == (43_418_401, 43_196_001)
    assert counts(["model=r101"])[:2] == (62_358_305, 62_135_905)
