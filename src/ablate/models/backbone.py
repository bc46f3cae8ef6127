"""Backbones: a small from-scratch CNN for CPU runs (``tiny``) and torchvision ResNets (``r50`` … ``r101_dc5``).

ResNets use ``FrozenBatchNorm2d`` and freeze the stem and ``layer1`` like the authors; each frozen norm is folded into
the convolution before it (``conv_frozen_bn``), with torchvision's parameter names kept. Pretrained weights are
never fetched implicitly: ``weights`` is a local state-dict path, the name of a file shipped in
``ablate/models/weights/`` (``tiny_shapes``: the tiny backbone pretrained by ``python -m ablate.pretrain``), or
``imagenet`` to opt in to torchvision's download (online machines only). A pretrained tiny backbone, like the
ResNets, keeps its batch-norm statistics frozen.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import ResNet50_Weights, ResNet101_Weights
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops import FrozenBatchNorm2d

from ablate.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")
SHIPPED_WEIGHTS = Path(__file__).parent / "weights"


class BackboneWeightsError(ValueError):
    """``model.backbone.weights`` names a file that is missing or does not fit the backbone; the message says what."""


@BACKBONES.register("tiny")
class TinyBackbone(nn.Module):
    """Stages of [3×3 stride-2 conv → BN → ReLU → 3×3 conv → BN → ReLU]; output stride 2^len(widths)."""

    def __init__(self, widths: list[int], weights: str | None = None, **_: object):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in widths:
            for stride in (2, 1):
                layers += [nn.Conv2d(c_in, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
        self.body = nn.Sequential(*layers)
        self.widths = list(widths)
        self.num_channels = c_in
        self.stride = 2 ** len(widths)
        self.pretrained = bool(weights)
        if weights:
            load_tiny_weights(self, weights_path(weights))
            for norm in self.norms():  # frozen statistics and affine, as FrozenBatchNorm2d in the ResNets
                norm.requires_grad_(False)

    def norms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.body if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> TinyBackbone:
        super().train(mode)
        if self.pretrained:  # pretrained statistics stay; a checkpoint's state dict is the same either way
            for norm in self.norms():
                norm.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images)


def conv_frozen_bn(conv: nn.Conv2d, norm: FrozenBatchNorm2d, x: Tensor) -> Tensor:
    """``norm(conv(x))``, the frozen affine applied in one pass over the smaller of the two tensors it can scale.

    ``FrozenBatchNorm2d`` multiplies and adds over the whole feature map (two passes forward, one backward). Where
    the map is larger than the weight (the early, high-resolution layers) the scale is folded into the weight and
    the shift becomes the convolution's bias; elsewhere one fused multiply-add runs on the map. Either way the
    same function up to float rounding; gradients reach ``conv.weight`` through the fold, the statistics stay
    buffers.
    """
    scale = norm.weight * (norm.running_var + norm.eps).rsqrt()  # FrozenBatchNorm2d's own formula
    shift = norm.bias - norm.running_mean * scale
    h, w = (-(-n // s) for n, s in zip(x.shape[-2:], conv.stride))  # output size (the ResNets pad to keep it)
    if x.shape[0] * conv.out_channels * h * w >= conv.weight.numel():
        return F.conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), shift, conv.stride, conv.padding, conv.dilation,
                        conv.groups)
    return torch.addcmul(shift.view(1, -1, 1, 1), conv(x), scale.view(1, -1, 1, 1))


class FoldedBottleneck(Bottleneck):
    """torchvision's Bottleneck (same modules and names) with each frozen norm folded into its convolution."""

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(conv_frozen_bn(self.conv1, self.bn1, x))
        out = self.relu(conv_frozen_bn(self.conv2, self.bn2, out))
        out = conv_frozen_bn(self.conv3, self.bn3, out)
        out += x if self.downsample is None else conv_frozen_bn(self.downsample[0], self.downsample[1], x)
        return self.relu(out)


class ResNetBody(nn.Module):
    """A torchvision ResNet's stem and ``layer1``–``layer4`` under their own names (checkpoints and torchvision
    state dicts load unchanged), returning ``layer4``'s features."""

    def __init__(self, resnet: ResNet):
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(resnet, name))

    def forward(self, images: Tensor) -> Tensor:
        x = self.maxpool(self.relu(conv_frozen_bn(self.conv1, self.bn1, images)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNetBackbone(nn.Module):
    """torchvision ResNet up to ``layer4``; DC5 replaces layer4's stride with dilation (output stride 16)."""

    blocks = [3, 4, 6, 3]  # ResNet-50
    imagenet = ResNet50_Weights.IMAGENET1K_V1

    def __init__(self, dilation: bool = False, weights: str | None = None, **_: object):
        super().__init__()
        resnet = ResNet(FoldedBottleneck, self.blocks, replace_stride_with_dilation=[False, False, dilation],
                        norm_layer=FrozenBatchNorm2d)
        if weights == "imagenet":
            resnet.load_state_dict(self.imagenet.get_state_dict(progress=True))
        elif weights:
            load_resnet_weights(resnet, weights_path(weights))
        for name, p in resnet.named_parameters():
            # the authors train layer2–4 only (stem and layer1 stay frozen), and nothing if lr_backbone ≤ 0
            p.requires_grad_(any(k in name for k in ("layer2", "layer3", "layer4")))
        self.body = ResNetBody(resnet)
        self.num_channels = 2048
        self.stride = 16 if dilation else 32

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images)


@BACKBONES.register("resnet50")
class ResNet50(ResNetBackbone):
    pass


@BACKBONES.register("resnet101")
class ResNet101(ResNetBackbone):
    blocks = [3, 4, 23, 3]
    imagenet = ResNet101_Weights.IMAGENET1K_V1


def weights_path(weights: str) -> Path:
    """A shipped file's name (``tiny_shapes``) → its path in ``ablate/models/weights``; anything else is a path."""
    shipped = SHIPPED_WEIGHTS / f"{weights}.pt"
    return shipped if "/" not in weights and shipped.is_file() else Path(weights)


def read_weights(path: Path, what: str) -> dict[str, Tensor]:
    """The ``model.backbone.weights`` state dict of a ``what`` backbone, read safely (tensors and plain containers
    only: a pickle that asks for code is refused, never run)."""
    if not path.is_file():
        raise BackboneWeightsError(f"model.backbone.weights: no such file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a zip/pickle, truncated, or code in the pickle
        raise BackboneWeightsError(f"model.backbone.weights: {path} is not a {what} state dict that loads safely "
                                   f"({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"model.backbone.weights: {path} holds a {type(state).__name__}, not a {what} "
                                   "state dict")
    return state


def load_tiny_weights(backbone: TinyBackbone, path: Path) -> None:
    """Load a ``python -m ablate.pretrain`` state dict (the body's keys, ``body.N.…``)."""
    state = read_weights(path, "tiny backbone")
    try:
        backbone.load_state_dict(state)
    except RuntimeError as e:  # missing, unexpected or mis-shaped keys
        raise BackboneWeightsError(f"model.backbone.weights: {path} is not a tiny backbone of widths "
                                   f"{backbone.widths} ({str(e).strip().splitlines()[0][:200]})") from None


def load_resnet_weights(resnet: nn.Module, path: Path) -> None:
    """Load an ImageNet state dict from a local file (torchvision's, or a ``backbone.0.body.``-prefixed one)."""
    state = read_weights(path, "ResNet")
    state = state.get("model", state)
    state = {k.removeprefix("backbone.0.body.").removeprefix("backbone.body."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    try:
        missing, unexpected = resnet.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a key of the right name with the wrong shape
        raise BackboneWeightsError(f"model.backbone.weights: {path} does not fit the ResNet "
                                   f"({str(e).strip().splitlines()[-1][:200]})") from None
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise BackboneWeightsError(f"{path}: not a ResNet state dict (missing {missing[:5]}, unexpected "
                                   f"{unexpected[:5]})")


def build_backbone(name: str, *, widths: list[int], dilation: bool, weights: str | None) -> nn.Module:
    """A backbone of the registry; a job with ``train.lr_backbone ≤ 0`` freezes all of it (``ablate.job``)."""
    return BACKBONES.get(str(name))(widths=widths, dilation=dilation, weights=weights)
