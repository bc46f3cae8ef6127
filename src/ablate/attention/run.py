"""Rebuild a finished job's model from its folder, run it on a validation image with ``return_attention=True``,
and write the per-head cross-attention maps (paper Figs. 1 and 4) into the job's ``attention/`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torchvision.ops import box_convert, box_iou

from ablate.attention import files
from ablate.attention.draw import draw_attention
from ablate.runs.files import RunFiles

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
LABEL_AXES = ("csq", "proj", "ref", "focal", "offset")


def load_job(job_dir: Path):
    """(cfg, model in eval mode, validation dataset) of a job folder with a checkpoint."""
    from ablate.data import build_datasets
    from ablate.engine.checkpoint import load_checkpoint
    from ablate.models.builder import build_model

    job_dir = Path(job_dir)
    cfg_path = job_dir / ".hydra" / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{job_dir} has no .hydra/config.yaml: not an ablate job folder")
    state = load_checkpoint(RunFiles(job_dir))
    if state is None:
        raise FileNotFoundError(f"{job_dir} has no readable checkpoint.pt to draw attention maps from")
    cfg = OmegaConf.load(cfg_path)
    train_ds, val_ds = build_datasets(cfg.data, max_resolution=cfg.model.get("max_resolution"))
    model = build_model(cfg, num_classes=train_ds.num_classes)
    model.load_state_dict(state["model"])
    return cfg, model.eval(), val_ds, int(state.get("step", 0))


def maps_for_query(layer_maps: dict[str, torch.Tensor], image: int = 0, query: int = 0) -> dict[str, torch.Tensor]:
    """(B, heads, Q, h, w) maps of one decoder layer -> (heads, h, w) maps of one image and one query."""
    return {kind: m[image, :, query].detach() for kind, m in layer_maps.items()}


@torch.no_grad()
def attention_for_image(model: torch.nn.Module, val_ds, index: int, layer: int = -1,
                        box_index: int | None = None) -> dict[str, Any]:
    """Run the model on one validation image; pick the GT box (the largest unless given) and the query whose
    prediction overlaps it best. Returns numpy arrays: picture (H, W, 3), gt_box, pred_box (pixels, x0 y0 x1 y1),
    the query, and that query's (heads, h, w) maps per kind."""
    if not 0 <= index < len(val_ds):
        raise IndexError(f"--image {index}: the validation set has {len(val_ds)} images (0…{len(val_ds) - 1})")
    image, target = val_ds[index]
    out = model([image.to(next(model.parameters()).device)], return_attention=True)
    out = {"pred_boxes": out["pred_boxes"].float().cpu(),
           "attention": [{k: v.float().cpu() for k, v in m.items()} for m in out["attention"]]}
    h, w = image.shape[-2:]
    scale = torch.tensor([w, h, w, h])
    gt = box_convert(target["boxes"], "cxcywh", "xyxy") * scale
    if len(gt) == 0:
        raise ValueError(f"validation image {index} has no boxes to draw")
    if box_index is None:
        box_index = int(((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).argmax())
    pred = box_convert(out["pred_boxes"][0], "cxcywh", "xyxy") * scale
    query = int(box_iou(gt[box_index : box_index + 1], pred)[0].argmax())
    picture = (image * STD + MEAN).clamp(0, 1).permute(1, 2, 0)
    maps = maps_for_query(out["attention"][layer], 0, query)
    return {"picture": picture.numpy(), "gt_box": gt[box_index].numpy(), "pred_box": pred[query].numpy(),
            "query": query, **{k: v.float().numpy() for k, v in maps.items()}}


def job_label(job_dir: Path) -> str:
    """The job's variant in words (result.json `labels`, else `variant`), for figure titles."""
    result = RunFiles(job_dir).read_result() or {}
    labels = result.get("labels") if isinstance(result.get("labels"), dict) else {}
    words = [labels[a] for a in LABEL_AXES if isinstance(labels.get(a), str) and labels[a] != "n/a"]
    return ", ".join(words) or str(result.get("variant") or Path(job_dir).name)


def write_attention(job_dir: Path, image: int = 0, layer: int = -1) -> Path:
    """Draw one validation image's maps into ``JOB/attention/`` (PNG + NPZ) and record it in the index."""
    job_dir = Path(job_dir)
    cfg, model, val_ds, step = load_job(job_dir)
    found = attention_for_image(model, val_ds, image, layer)
    n_layers = len(model.transformer.decoder.layers)
    label, seed = job_label(job_dir), cfg.train.seed
    title = f"{label} (seed {seed}), step {step}: decoder layer {layer % n_layers + 1}, image {image}, per head"
    folder = job_dir / files.FOLDER
    png = draw_attention(found["picture"], found["gt_box"], {k: found[k] for k in files.KINDS if k in found},
                         folder / f"image{image}.png", title=title, pred_box=found["pred_box"])
    files.save_maps(folder / f"image{image}.npz", **{k: v for k, v in found.items() if k != "query"})
    header = {"label": label, "seed": int(seed), "step": step, "layer": layer % n_layers + 1}
    files.add_image(job_dir, header, {"image": image, "png": png.name, "maps": f"image{image}.npz",
                                      "query": found["query"], "gt_box": found["gt_box"].tolist(),
                                      "pred_box": found["pred_box"].tolist()})
    return png
