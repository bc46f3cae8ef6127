"""The ResNet backbones fold each frozen norm into its convolution: the same function, names and gradients as
torchvision's ResNet with ``FrozenBatchNorm2d``."""

import pytest
import torch
from torchvision.models import resnet50
from torchvision.ops import FrozenBatchNorm2d

from ablate.models.backbone import ResNet50


def torchvision_reference(dilation: bool) -> torch.nn.Module:
    """torchvision's own ResNet-50 with non-trivial frozen statistics and affine (the identity would hide a
    wrong fold)."""
    g = torch.Generator().manual_seed(0)
    ref = resnet50(weights=None, replace_stride_with_dilation=[False, False, dilation], norm_layer=FrozenBatchNorm2d)
    for m in ref.modules():
        if isinstance(m, FrozenBatchNorm2d):
            n = m.weight.numel()
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return ref


def reference_features(ref: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
    return ref.layer4(ref.layer3(ref.layer2(ref.layer1(x))))


@pytest.mark.parametrize("dilation", [False, True], ids=["r50", "r50_dc5"])
def test_folded_resnet_matches_torchvision(dilation, monkeypatch):
    ref = torchvision_reference(dilation)
    ours = ResNet50(dilation=dilation)
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert set(ours.body.state_dict()) == set(state)  # torchvision's names: its weights and our checkpoints load
    ours.body.load_state_dict(state)
    # float64: in float32 the fold's rounding flips a few ReLUs of this random, badly scaled network, and the
    # early layers' gradients then differ by up to 1% (measured) for a reason that is not the fold
    ref, ours = ref.double(), ours.double()
    for name, p in ref.named_parameters():
        p.requires_grad_(any(k in name for k in ("layer2", "layer3", "layer4")))

    # at 64×96 the high-resolution convolutions fold the norm into the weight, the small-map, large-weight ones
    # (layer3–4, some of layer2) take the multiply-add on the map: both branches of conv_frozen_bn must run
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    addcmul, calls = torch.addcmul, []
    monkeypatch.setattr(torch, "addcmul", lambda *a, **k: calls.append(1) or addcmul(*a, **k))
    want, got = reference_features(ref, x), ours(x)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in ours.modules())
    assert 0 < len(calls) < convs, (len(calls), convs)
    assert got.shape == want.shape == (2, 2048, 4 if dilation else 2, 6 if dilation else 3)
    assert (got - want).norm() <= 1e-10 * want.norm()

    weights = torch.randn_like(want)
    (want * weights).sum().backward()
    (got * weights).sum().backward()
    for name in ("layer2.0.conv1.weight", "layer3.5.conv2.weight", "layer4.2.conv3.weight",
                 "layer4.0.downsample.0.weight"):
        g_ref = ref.get_parameter(name).grad
        g_ours = ours.body.get_parameter(name).grad
        assert (g_ours - g_ref).norm() <= 1e-10 * g_ref.norm(), name
    # frozen parts stay frozen; the folded statistics never receive gradients
    assert ours.body.get_parameter("layer1.0.conv1.weight").grad is None
    assert all(not b.requires_grad for b in ours.body.buffers())
