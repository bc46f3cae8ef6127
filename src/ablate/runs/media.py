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
                    path = attention_figure(model, self.val_ds, self.indices[0], Path(tmp) / "a.png")
                    self.logger.log_image("val/attention", path, step=step)
        except Exception as e:  # noqa: BLE001 - see the docstring
            log.warning("W&B media not logged at step %d: %s: %s", step, type(e).__name__, e)


def attention_figure(model: Any, dataset: Any, index: int, path: Path) -> Path:
    """Per-head spatial / content / combined cross-attention maps of the last decoder layer, for the query whose
    box best overlaps the image's largest ground-truth box (one forward pass on one image); the drawing of
    ``python -m ablate.attention``."""
    from ablate.attention.draw import draw_attention
    from ablate.attention.run import attention_for_image

    a = attention_for_image(model, dataset, index)
    title = f"image {index}, last decoder layer, query {a['query']} (best match to the largest box)"
    maps = {k: a[k] for k in ("spatial", "content", "combined") if k in a}
    return draw_attention(a["picture"], a["gt_box"], maps, path, title=title, pred_box=a["pred_box"])
