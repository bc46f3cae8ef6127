"""`--attention-run JOBDIR`: rebuild a finished job's model from its folder, run it on a validation image with
``return_attention=True`` and draw its per-head cross-attention maps (paper Figs. 1 and 4)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from torchvision.ops import box_convert, box_iou

from ablate.report.attention import AttentionFn, draw_attention, draw_attention_comparison, maps_for_query

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def load_job(job_dir: Path):
    """(cfg, model in eval mode, validation dataset) of a job folder with a checkpoint."""
    from ablate.data import build_datasets
    from ablate.engine.checkpoint import load_checkpoint
    from ablate.models.builder import build_model
    from ablate.runs.files import RunFiles

    job_dir = Path(job_dir)
    files = RunFiles(job_dir)
    cfg_path = job_dir / ".hydra" / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{job_dir} has no .hydra/config.yaml: not an ablate job folder")
    state = load_checkpoint(files)
    if state is None:
        raise FileNotFoundError(f"{job_dir} has no readable checkpoint.pt to draw attention maps from")
    cfg = OmegaConf.load(cfg_path)
    train_ds, val_ds = build_datasets(cfg.data, max_resolution=cfg.model.max_resolution)
    model = build_model(cfg, num_classes=train_ds.num_classes)
    model.load_state_dict(state["model"])
    return cfg, model.eval(), val_ds


@torch.no_grad()
def attention_for_image(model: torch.nn.Module, val_ds, index: int, layer: int = -1, box_index: int | None = None):
    """Run the model on one validation image; pick the GT box (the largest unless given) and the query whose
    prediction overlaps it best; return (image in [0,1], that GT box in pixels, that query's (heads, h, w) maps)."""
    image, target = val_ds[index]
    out = model([image], return_attention=True)
    h, w = image.shape[-2:]
    scale = torch.tensor([w, h, w, h])
    gt = box_convert(target["boxes"], "cxcywh", "xyxy") * scale
    if len(gt) == 0:
        raise ValueError(f"validation image {index} has no boxes to draw")
    if box_index is None:
        box_index = int(((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).argmax())
    pred = box_convert(out["pred_boxes"][0], "cxcywh", "xyxy") * scale
    query = int(box_iou(gt[box_index : box_index + 1], pred)[0].argmax())
    picture = (image * STD + MEAN).clamp(0, 1)
    return picture, gt[box_index], maps_for_query(out["attention"][layer], 0, query)


def make_attention_fn(job_dir: Path, image_index: int = 0, layer: int = -1) -> AttentionFn:
    """The report hook drawing spatial / content / combined maps of one job's last decoder layer."""
    job_dir = Path(job_dir)
    cfg, model, val_ds = load_job(job_dir)

    def draw(out: Path) -> list[Path]:
        picture, box, maps = attention_for_image(model, val_ds, image_index, layer)
        title = f"{job_dir.name}: decoder layer {layer % len(model.transformer.decoder.layers) + 1}, per head"
        return [draw_attention(picture, box[None], maps, Path(out) / "attention.png", title=title)]

    return draw


def draw_comparison(jobs: dict[str, Path], path: Path, image_index: int = 0, layer: int = -1) -> Path:
    """Spatial maps of several jobs (e.g. DETR vs Conditional DETR at the same step) for the same GT object."""
    rows, picture, box = {}, None, None
    for label, job_dir in jobs.items():
        _, model, val_ds = load_job(job_dir)
        picture, box, maps = attention_for_image(model, val_ds, image_index, layer)
        rows[label] = maps["spatial"]
    return draw_attention_comparison(picture, box[None], rows, path)
