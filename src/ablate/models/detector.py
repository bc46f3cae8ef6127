"""The detector: backbone → input projection → encoder → decoder → shared class and box heads."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ablate.models.attention import padding_bias
from ablate.models.backbone import build_backbone
from ablate.models.config import ModelConfig
from ablate.models.decoder import ConditionalDecoderLayer, Decoder, DETRDecoderLayer
from ablate.models.encoder import Encoder, EncoderLayer
from ablate.models.heads import MLP, inverse_sigmoid
from ablate.models.position_encoding import PositionEmbeddingSine, sine_embed_points
from ablate.models.projection import PROJECTIONS
from ablate.models.reference import REFERENCE_POINTS, ReferencePoint
from ablate.models.spatial_query import SPATIAL_QUERIES, SpatialQuery, incompatibility


class Transformer(nn.Module):
    """Container so parameter names read ``transformer.encoder…`` / ``transformer.decoder…`` as the authors'."""

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


class Detector(nn.Module):
    def __init__(
        self, backbone: nn.Module, transformer: Transformer, reference: ReferencePoint | None, *,
        num_classes: int, num_queries: int, focal: bool, offset: bool, aux_loss: bool,
    ):
        super().__init__()
        d = transformer.decoder.norm.normalized_shape[0]
        self.backbone, self.transformer, self.reference = backbone, transformer, reference
        self.position = PositionEmbeddingSine(d // 2)
        self.input_proj = nn.Conv2d(backbone.num_channels, d, kernel_size=1)
        self.query_embed = nn.Embedding(num_queries, d)
        # focal: one sigmoid logit per class id; softmax CE: plus the no-object logit
        self.class_embed = nn.Linear(d, num_classes if focal else num_classes + 1)
        self.bbox_embed = MLP(d, d, 4, 3)
        self.num_classes, self.focal, self.offset, self.aux_loss = num_classes, focal, offset, aux_loss

    @property
    def spatial_query(self) -> SpatialQuery:
        return self.transformer.decoder.spatial_query

    def forward(self, images: Tensor | list[Tensor], mask: Tensor | None = None,
                return_attention: bool = False) -> dict:
        """images: a list of (3, H, W) tensors (any sizes) or a (B, 3, H, W) batch with ``mask`` True on padding."""
        images, mask = batch_images(images, mask)
        features = self.backbone(images)
        feature_mask = F.interpolate(mask[None].float(), size=features.shape[-2:])[0].bool()
        pos = self.position(feature_mask).to(features.dtype)
        return self.forward_features(self.input_proj(features), feature_mask, pos, return_attention)

    def forward_features(self, src: Tensor, mask: Tensor, pos: Tensor, return_attention: bool = False) -> dict:
        """From the projected feature map src (B, d, h, w), its padding mask (B, h, w) and p_k (B, d, h, w)."""
        b, _, h, w = src.shape
        src, pos = src.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2)
        bias = padding_bias(mask.flatten(1), src.dtype)
        memory = self.transformer.encoder(src, pos, bias)

        # o_q, s and p_s are the same for every image: computed once, broadcast over the batch (stride 0)
        query_pos = self.query_embed.weight.unsqueeze(0)
        ref = self.reference(query_pos) if self.reference is not None else None  # (1, Q, 2) in [0, 1]
        p_s = sine_embed_points(ref, src.shape[-1] // 2) if ref is not None and self.spatial_query.conditional else None
        query_pos = query_pos.expand(b, -1, -1)
        ref = ref.expand(b, -1, -1) if ref is not None else None
        p_s = p_s.expand(b, -1, -1) if p_s is not None else None
        hs, maps = self.transformer.decoder(memory, pos, bias, query_pos, p_s, return_attention)

        logits, boxes = self.predict(hs, ref)
        out = {"pred_logits": logits[-1], "pred_boxes": boxes[-1], "all_logits": logits, "all_boxes": boxes}
        if self.aux_loss:
            out["aux_outputs"] = [{"pred_logits": a, "pred_boxes": c} for a, c in zip(logits[:-1], boxes[:-1])]
        if ref is not None:
            out["reference_points"] = ref
        if return_attention:
            out["attention"] = [{k: v.unflatten(-1, (h, w)) for k, v in m.items()} for m in maps]
        return out

    def predict(self, hs: Tensor, ref: Tensor | None) -> tuple[Tensor, Tensor]:
        """Shared heads on every decoder layer's output hs (L, B, Q, d); with ``offset`` the box centre is an
        offset from the reference point in inverse-sigmoid space (paper Eq. 1)."""
        raw = self.bbox_embed(hs)
        if self.offset:
            raw = torch.cat((raw[..., :2] + inverse_sigmoid(ref), raw[..., 2:]), dim=-1)
        return self.class_embed(hs), raw.sigmoid()


def batch_images(images: Tensor | list[Tensor], mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Pad a list of images bottom/right to a common size; the mask is True on padding."""
    if isinstance(images, Tensor):
        if mask is None:
            mask = torch.zeros((images.shape[0], *images.shape[-2:]), dtype=torch.bool, device=images.device)
        return images, mask
    h = max(im.shape[-2] for im in images)
    w = max(im.shape[-1] for im in images)
    batch = images[0].new_zeros((len(images), 3, h, w))
    mask = torch.ones((len(images), h, w), dtype=torch.bool, device=images[0].device)
    for i, im in enumerate(images):
        batch[i, :, : im.shape[-2], : im.shape[-1]] = im
        mask[i, : im.shape[-2], : im.shape[-1]] = False
    return batch, mask


def build_detector(
    model: ModelConfig, *, csq: str, proj: str, ref: str, focal: bool, offset: bool, num_classes: int,
) -> Detector:
    """Build the model for one point of the ablation grid. Axes that do not apply build nothing."""
    d, m = model.hidden_dim, model.nheads
    if reason := incompatibility(csq, proj):  # a degenerate model is never built, whoever asks
        raise ValueError(reason)
    query_cls = SPATIAL_QUERIES.get(csq)
    projection = PROJECTIONS.get(proj)(d, m) if query_cls.uses_proj else None
    spatial_query = query_cls(projection)
    if query_cls.conditional:
        layers = [ConditionalDecoderLayer(d, m, model.dim_feedforward, model.dropout, is_first=i == 0)
                  for i in range(model.dec_layers)]
    else:
        content_only = query_cls.content_only_after_first
        layers = [DETRDecoderLayer(d, m, model.dim_feedforward, model.dropout, use_positions=i == 0 or not content_only)
                  for i in range(model.dec_layers)]
    encoder = Encoder(EncoderLayer(d, m, model.dim_feedforward, model.dropout), model.enc_layers)
    transformer = Transformer(encoder, Decoder(layers, d, spatial_query))
    # the reference point exists when p_s needs it (conditional forms) or boxes are offsets from it
    reference = REFERENCE_POINTS.get(ref)(d, model.num_queries) if query_cls.conditional or offset else None
    for p in transformer.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    if reference is not None:  # after the transformer, so ref=query draws the same random numbers as before
        reference.reset_parameters()
    b = model.backbone
    backbone = build_backbone(b.name, widths=list(b.widths), dilation=b.dilation, weights=b.weights)
    detector = Detector(backbone, transformer, reference, num_classes=num_classes, num_queries=model.num_queries,
                        focal=focal, offset=offset, aux_loss=model.aux_loss)
    if focal:  # prior 0.01 on every class, so the focal loss starts small
        nn.init.constant_(detector.class_embed.bias, -math.log((1 - 0.01) / 0.01))
    if offset:  # start every box at its reference point (the authors' init)
        nn.init.zeros_(detector.bbox_embed.layers[-1].weight)
        nn.init.zeros_(detector.bbox_embed.layers[-1].bias)
    return detector


def check_dimensions(model: ModelConfig) -> None:
    """Reject sizes the model cannot be built with, saying why (``ablate.config.validate`` calls it before
    anything is allocated; a direct ``build_detector`` caller may call it too)."""
    for key in ("hidden_dim", "nheads", "dec_layers", "num_queries", "dim_feedforward"):
        if getattr(model, key) < 1:
            raise ValueError(f"model.{key}={getattr(model, key)} must be ≥ 1")
    d, m = model.hidden_dim, model.nheads
    if d % m:
        raise ValueError(f"model.hidden_dim={d} must be divisible by model.nheads={m}")
    if d % 4:
        raise ValueError(f"model.hidden_dim={d} must be divisible by 4 (sine pairs for x and y)")
    if model.enc_layers < 0:
        raise ValueError(f"model.enc_layers={model.enc_layers} must be ≥ 0")
    if not 0.0 <= model.dropout < 1.0:
        raise ValueError(f"model.dropout={model.dropout} must be in [0, 1)")
