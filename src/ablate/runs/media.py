"""What a W&B training run shows besides the scalars: at each evaluation a panel of fixed validation images
with ground-truth and predicted boxes and the per-class AP table; after the final one, the decoder's
cross-attention maps for one fixed image. Nothing is computed when the logger takes no media (logger=none)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from ablate.runs.panel import build_panels, panel_indices

log = logging.getLogger(__name__)


class EvalMedia:
    """Built once per run (rank 0); ``on_eval`` after every evaluation, with the model in eval mode."""

    def __init__(self, logger: Any, val_ds: Any, *, focal: bool, device: Any, count: int = 4) -> None:
        self.logger, self.val_ds, self.focal, self.device = logger, val_ds, focal, device
        self.enabled = bool(getattr(logger, "wants_media", False))
        self.indices = panel_indices(val_ds, count) if self.enabled else []
        self.class_names: dict[int, str] = dict(getattr(val_ds, "category_names", {}) or {})

    def on_eval(self, model: Any, step: int, per_class: list[dict], *, final: bool = False) -> None:
        """Log the panel and the per-class table at ``step``; with ``final``, the attention maps too.

        A failure here is reported and skipped: pictures must never cost a trained model."""
        if not self.enabled:
            return
        try:
            import pandas as pd

            if self.indices:
                panels = build_panels(model, self.val_ds, self.indices, focal=self.focal, device=self.device,
                                      class_names=self.class_names)
                self.logger.log_boxes("val/predictions", panels, self.class_names, step)
            if per_class:
                self.logger.log_table("val/per_class_AP", pd.DataFrame(per_class, columns=["id", "name", "AP", "AP50"]),
                                      step=step)
            if final and self.indices:
                with tempfile.TemporaryDirectory() as tmp:
                    path = attention_figure(model, self.val_ds, self.indices[0], self.device, Path(tmp) / "a.png")
                    self.logger.log_image("val/attention", path, step=step)
        except Exception as e:  # noqa: BLE001 - see the docstring
            log.warning("W&B media not logged at step %d: %s: %s", step, type(e).__name__, e)


def attention_figure(model: Any, dataset: Any, index: int, device: Any, path: Path) -> Path:
    """Per-head spatial / content / combined cross-attention maps of the last decoder layer, for the query whose
    box best overlaps the image's largest ground-truth box (one forward pass on one image)."""
    import torch
    from torchvision.ops import box_convert, box_iou

    from ablate.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from ablate.report.attention import draw_attention, maps_for_query

    image, target = dataset[index]
    with torch.no_grad():
        out = model([image.to(device)], return_attention=True)
    h, w = image.shape[-2:]
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
    gt = box_convert(torch.as_tensor(target["boxes"]).float(), "cxcywh", "xyxy") * scale
    largest = int(((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).argmax())
    pred = box_convert(out["pred_boxes"][0].float().cpu(), "cxcywh", "xyxy") * scale
    query = int(box_iou(gt[largest : largest + 1], pred)[0].argmax())
    maps = {k: v.float().cpu() for k, v in maps_for_query(out["attention"][-1], 0, query).items()}
    picture = (image.cpu().float() * torch.tensor(IMAGENET_STD)[:, None, None]
               + torch.tensor(IMAGENET_MEAN)[:, None, None]).clamp(0, 1)
    title = f"image {target['image_id']}, last decoder layer, query {query} (best match to the largest box)"
    return draw_attention(picture, gt[largest][None], maps, path, title=title)
