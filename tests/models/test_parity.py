"""Golden parity with the authors' code: outputs, intermediates, reference points, matching, losses and
post-processing of small Conditional DETR and DETR models (tests/fixtures, made with the authors' code)."""

import pytest
import torch

from ablate.losses import LossConfig, build_criterion
from ablate.models.config import ModelConfig
from ablate.models.convert import load_pretrained
from ablate.models.detector import build_detector
from ablate.models.postprocess import postprocess
from tests.conftest import FIXTURES

SMALL = ModelConfig(hidden_dim=256, nheads=8, enc_layers=2, dec_layers=3, dim_feedforward=256, num_queries=20,
                    dropout=0.1)
AXES = {
    "conditional_detr_small.pt": dict(csq="full", proj="diagonal", ref="query", focal=True, offset=True),
    "detr_small.pt": dict(csq="detr", proj="diagonal", ref="query", focal=False, offset=False),
}


def load(name: str, dtype=torch.float32):
    fx = torch.load(FIXTURES / name, weights_only=True)
    model = build_detector(SMALL, num_classes=91, **AXES[name])
    model.input_proj = torch.nn.Conv2d(2048, 256, 1)  # the fixture's features are a fake ResNet layer4
    load_pretrained(model, {k: v.float() for k, v in fx["state_dict"].items()}, allow_missing_prefixes=("backbone.",))
    return fx, model.to(dtype).eval()


def run(fx, model, dtype=torch.float32, return_attention=False):
    inputs = fx["inputs"]
    feats = inputs["features"].to(dtype)
    pos = model.position(inputs["mask"]).to(dtype) if dtype == torch.float64 else inputs["pos"]
    with torch.no_grad():
        return model.forward_features(model.input_proj(feats), inputs["mask"], pos, return_attention)


@pytest.fixture(scope="module", params=sorted(AXES))
def golden(request):
    fx, model = load(request.param)
    return request.param, fx, model, run(fx, model)


def test_key_positional_embedding_matches():
    fx = torch.load(FIXTURES / "conditional_detr_small.pt", weights_only=True)
    _, model = load("conditional_detr_small.pt")
    torch.testing.assert_close(model.position(fx["inputs"]["mask"]), fx["inputs"]["pos"], atol=1e-6, rtol=0)


def test_outputs_match(golden):
    name, fx, model, out = golden
    ref = fx["outputs"]
    torch.testing.assert_close(out["pred_logits"], ref["pred_logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["pred_boxes"], ref["pred_boxes"], atol=1e-6, rtol=0)
    for mine, theirs in zip(out["aux_outputs"], ref["aux_outputs"], strict=True):
        torch.testing.assert_close(mine["pred_logits"], theirs["pred_logits"], atol=1e-5, rtol=0)
        torch.testing.assert_close(mine["pred_boxes"], theirs["pred_boxes"], atol=1e-6, rtol=0)
    if "reference_points" in ref:
        torch.testing.assert_close(out["reference_points"], ref["reference_points"], atol=1e-6, rtol=0)
    else:
        assert "reference_points" not in out  # DETR builds no reference point


def test_intermediates_match(golden):
    name, fx, model, _ = golden
    seen = {"enc": [], "dec": [], "p_q": []}
    hooks = [layer.register_forward_hook(lambda m, i, o: seen["enc"].append(o))
             for layer in model.transformer.encoder.layers]
    hooks += [layer.register_forward_hook(lambda m, i, o: seen["dec"].append(o[0]))
              for layer in model.transformer.decoder.layers]
    hooks += [layer.ca_qpos_sine_proj.register_forward_pre_hook(lambda m, i: seen["p_q"].append(i[0]))
              for layer in model.transformer.decoder.layers if hasattr(layer, "ca_qpos_sine_proj")]
    run(fx, model)
    for h in hooks:
        h.remove()
    inter = fx["intermediates"]
    seq_first = lambda xs: torch.stack([x.transpose(0, 1) for x in xs])  # noqa: E731  ours are batch-first
    torch.testing.assert_close(seq_first(seen["enc"]), inter["encoder_layer_outputs"], atol=1e-5, rtol=0)
    torch.testing.assert_close(seq_first(seen["dec"]), inter["decoder_layer_outputs"], atol=1e-5, rtol=0)
    hs = torch.stack([model.transformer.decoder.norm(x) for x in seen["dec"]])
    torch.testing.assert_close(hs, inter["hs"], atol=1e-5, rtol=0)
    if "query_sine_embed" in inter:  # p_q per layer: p_s in layer 1, λ_q ⊙ p_s after
        torch.testing.assert_close(seq_first(seen["p_q"]), inter["query_sine_embed"], atol=1e-5, rtol=0)


def test_float64_matches_authors_float64():
    for name in sorted(AXES):
        fx, model = load(name, torch.float64)
        out, ref = run(fx, model, torch.float64), fx["outputs_fp64"]
        torch.testing.assert_close(out["pred_logits"], ref["pred_logits"], atol=1e-9, rtol=0)
        torch.testing.assert_close(out["pred_boxes"], ref["pred_boxes"], atol=1e-9, rtol=0)


def test_matching_losses_and_total(golden):
    name, fx, model, out = golden
    crit = build_criterion(LossConfig(), num_classes=91, focal=AXES[name]["focal"])
    targets = fx["targets"]
    indices = crit.matcher(out["all_logits"], out["all_boxes"], targets)
    expected = [fx["matcher_indices"][k] for k in ("aux_0", "aux_1", "final")]
    for mine_layer, theirs_layer in zip(indices, expected, strict=True):
        for (q, t), (q_ref, t_ref) in zip(mine_layer, theirs_layer, strict=True):
            assert q.tolist() == q_ref.tolist() and t.tolist() == t_ref.tolist()
    losses = crit(out, targets)
    assert set(fx["losses"]) <= set(losses)
    for key, value in fx["losses"].items():
        torch.testing.assert_close(losses[key], value, atol=2e-5, rtol=0, msg=key)
    torch.testing.assert_close(losses["loss"], fx["total_loss"], atol=1e-4, rtol=0)
    assert crit.weights == {k: float(v) for k, v in fx["weight_dict"].items() if not k[-1].isdigit()}


def test_postprocess_matches(golden):
    name, fx, model, out = golden
    results = postprocess(out, fx["postprocess"]["target_sizes"], focal=AXES[name]["focal"])
    for mine, theirs in zip(results, fx["postprocess"]["results"], strict=True):
        assert len(mine["scores"]) == len(theirs["scores"])
        torch.testing.assert_close(mine["scores"].sort().values, theirs["scores"].sort().values, atol=1e-6, rtol=0)
        ours = {(int(q), int(c)): b for q, c, b in zip(mine["query_index"], mine["labels"], mine["boxes"])}
        ref = {(int(q), int(c)): b for q, c, b in zip(theirs["query_index"], theirs["labels"], theirs["boxes"])}
        assert ours.keys() == ref.keys()
        for k in ref:
            torch.testing.assert_close(ours[k], ref[k], atol=1e-3, rtol=0)  # pixels: 1e-6 of a 640-px image


def test_attention_paths_agree_on_golden(golden):
    """The explicit path (returns weights) gives the same outputs as the fused SDPA path."""
    name, fx, model, out = golden
    with_maps = run(fx, model, return_attention=True)
    torch.testing.assert_close(with_maps["pred_logits"], out["pred_logits"], atol=1e-5, rtol=0)
    maps = with_maps["attention"]
    assert len(maps) == 3 and set(maps[0]) == {"spatial", "content", "combined"}
    assert maps[0]["combined"].shape == (2, 8, 20, 10, 13)
    # padded keys of image 1 (right 4 columns, bottom 3 rows) get no attention
    assert maps[1]["combined"][1, :, :, :, 9:].abs().max() == 0
    torch.testing.assert_close(maps[2]["spatial"].sum((-2, -1)), torch.ones(2, 8, 20), atol=1e-5, rtol=0)
