"""Every point of the ablation grid builds, runs forward and backward, and each axis really changes the model."""

import itertools

import pytest
import torch

from ablate.losses import LossConfig, build_criterion
from ablate.models.projection import PROJECTIONS
from ablate.models.reference import REFERENCE_POINTS
from ablate.models.spatial_query import SPATIAL_QUERIES, incompatibility
from tests.models.helpers import toy, toy_images, toy_targets

GRID = [c for c in itertools.product(SPATIAL_QUERIES.names(), PROJECTIONS.names(), REFERENCE_POINTS.names(),
                                     [True, False], [True, False]) if not incompatibility(c[0], c[1])]


@pytest.mark.parametrize("csq,proj,ref,focal,offset", GRID)
def test_every_combination_trains_one_step(csq, proj, ref, focal, offset):
    model = toy(csq=csq, proj=proj, ref=ref, focal=focal, offset=offset)
    out = model(toy_images())
    assert out["pred_logits"].shape == (2, 5, 4 if focal else 5)
    assert out["pred_boxes"].shape == (2, 5, 4)
    assert len(out["aux_outputs"]) == 2
    assert ((out["pred_boxes"] >= 0) & (out["pred_boxes"] <= 1)).all()
    crit = build_criterion(LossConfig(), num_classes=4, focal=focal)
    loss = crit(out, toy_targets())["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    # every trainable parameter receives a gradient: nothing is built that the variant does not use
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, unused


def _out(**axes):
    model = toy(**axes).eval()
    with torch.no_grad():
        return model(toy_images())


def _differs(a, b):
    if a["pred_logits"].shape != b["pred_logits"].shape:
        return True
    return not torch.allclose(a["pred_logits"], b["pred_logits"]) or not torch.allclose(a["pred_boxes"], b["pred_boxes"])


@pytest.mark.parametrize("axis,values", [
    ("csq", ["full", "C", "T", "P", "I", "detr", "detr_content"]),
    ("proj", ["scalar", "block", "full", "diagonal", "identity"]),
    ("ref", ["query", "learned", "zero"]),
    ("focal", [True, False]),
    ("offset", [True, False]),
])
def test_each_axis_changes_the_outputs(axis, values):
    outs = [_out(**{axis: v}) for v in values]
    for (va, a), (vb, b) in itertools.combinations(zip(values, outs), 2):
        assert _differs(a, b), f"{axis}={va} and {axis}={vb} give identical outputs"


def test_unused_axes_build_nothing():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    for csq in ("C", "P", "detr"):
        assert len({count(toy(csq=csq, proj=p)) for p in PROJECTIONS.names()}) == 1, csq
    # DETR without offsets has no reference point at all
    detr = [toy(csq="detr", ref=r, offset=False) for r in REFERENCE_POINTS.names()]
    assert all(m.reference is None for m in detr)
    assert toy(csq="detr", offset=True).reference is not None


def test_same_model_when_axis_unused_gives_same_outputs():
    a, b = _out(csq="C", proj="full"), _out(csq="C", proj="scalar")
    assert not _differs(a, b)


def test_first_decoder_layer_is_the_same_for_every_conditional_form():
    """Layer 1 uses T = I (p_q = p_s) in every conditional variant: with shared weights its output is equal."""
    base = toy(csq="full").eval()
    firsts = {}
    for csq in ("full", "C", "T", "P", "I"):
        model = toy(csq=csq).eval()
        model.load_state_dict(base.state_dict(), strict=False)
        seen: list = []
        h = model.transformer.decoder.layers[0].register_forward_hook(lambda m, i, o, seen=seen: seen.append(o[0]))
        with torch.no_grad():
            out = model(toy_images())
        h.remove()
        firsts[csq] = (seen[0], out["aux_outputs"][0]["pred_boxes"])
    for csq, (f, boxes) in firsts.items():
        torch.testing.assert_close(f, firsts["full"][0], msg=csq)
        torch.testing.assert_close(boxes, firsts["full"][1], msg=csq)


def test_identity_projection_is_csq_p():
    """csq=full proj=identity and csq=P are the same model (paper: Identity bar = CSQ-P)."""
    a, b = toy(csq="full", proj="identity"), toy(csq="P")
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert not _differs(a.eval()(toy_images()), b.eval()(toy_images()))


def test_reference_point_offsets_boxes():
    """With offset and a zero last box layer, every layer's box centre is exactly the reference point."""
    model = toy(offset=True).eval()
    with torch.no_grad():
        out = model(toy_images())
    torch.testing.assert_close(out["pred_boxes"][..., :2], out["reference_points"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["pred_boxes"][..., 2:], torch.full_like(out["pred_boxes"][..., 2:], 0.5))
    zero = toy(ref="zero").eval()
    with torch.no_grad():
        assert torch.all(zero(toy_images())["reference_points"] == 0.5)


def test_focal_prior_and_batch_forms():
    model = toy(focal=True).eval()
    torch.testing.assert_close(model.class_embed.bias, torch.full((4,), -4.59512), atol=1e-5, rtol=0)
    images = toy_images()
    padded = torch.zeros(2, 3, 32, 32)
    mask = torch.ones(2, 32, 32, dtype=torch.bool)
    for i, im in enumerate(images):
        padded[i, :, : im.shape[1], : im.shape[2]] = im
        mask[i, : im.shape[1], : im.shape[2]] = False
    with torch.no_grad():
        a, b = model(images), model(padded, mask)
    torch.testing.assert_close(a["pred_logits"], b["pred_logits"])


def test_attention_maps_per_layer_and_head():
    for csq in ("full", "detr"):
        model = toy(csq=csq).eval()
        with torch.no_grad():
            out = model(toy_images(), return_attention=True)
            plain = model(toy_images())
        torch.testing.assert_close(out["pred_logits"], plain["pred_logits"], atol=1e-5, rtol=0)
        assert len(out["attention"]) == 3
        for maps in out["attention"]:
            for kind in ("spatial", "content", "combined"):
                b, m, q, h, w = maps[kind].shape
                assert (b, m, q) == (2, 2, 5)
                torch.testing.assert_close(maps[kind].sum((-2, -1)), torch.ones(b, m, q), atol=1e-5, rtol=0)


def test_degenerate_pair_is_not_built():
    with pytest.raises(ValueError, match="csq=T with proj=identity"):
        toy(csq="T", proj="identity")
