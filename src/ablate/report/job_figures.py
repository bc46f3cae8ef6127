"""Figures a job folder holds (``attention/``, written by ``python -m ablate.attention``): copied into the report's
own ``attention/`` and listed in index.md, copied as the report's attention.png (`--attention-run`) or redrawn side
by side from their saved maps (`--compare-attention`). Only files are read: no model, no checkpoint. A report
links nothing outside its folder, so it can be committed or moved while its sweep folders are deleted."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd

from ablate.attention import files as attention_files
from ablate.attention.draw import draw_attention_comparison
from ablate.runs.atomic import commit_temp, write_temp


class NoAttentionFiles(FileNotFoundError):
    """The job folder has no attention maps for that image (the message says how to draw them)."""


def job_figures(df: pd.DataFrame, out: Path) -> list[tuple[str, Path]]:
    """(caption, PNG copied into ``out/attention/``) of every attention figure the gathered jobs hold, in job
    order; the copy is named after the job folder (made unique) and the image."""
    figures: list[tuple[str, Path]] = []
    taken: set[str] = set()
    for job in df.itertuples(index=False):
        index = attention_files.read_index(Path(job.job))
        for entry in (index or {}).get("images", []):
            png = Path(job.job) / attention_files.FOLDER / str(entry.get("png", ""))
            if not png.is_file():
                continue
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{Path(job.job).name}_{png.stem}").strip("_")
            name = next(n for n in (f"{stem}.png", *(f"{stem}_{i}.png" for i in range(2, 10_000))) if n not in taken)
            taken.add(name)
            copy = Path(out) / attention_files.FOLDER / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            commit_temp(write_temp(copy, lambda f, src=png: f.write(src.read_bytes())), copy)
            figures.append((f"{index.get('label', job.variant)}, seed {index.get('seed', job.seed)}, step "
                            f"{index.get('step', '?')}, image {entry.get('image')}", copy))
    return figures


def entry(job: Path, image: int) -> dict:
    """The index entry of `image` in `job`, or NoAttentionFiles naming the command that draws it."""
    found = attention_files.find_image(job, image)
    if found is None or not Path(found["png"]).is_file() or not Path(found["maps"]).is_file():
        raise NoAttentionFiles(f"{job} has no attention maps for image {image}; draw them with: "
                               f"python -m ablate.attention {shlex.quote(str(job))} --image {image}")
    return found


def copy_attention(job: Path, image: int, out: Path) -> Path:
    """The job's per-head figure of `image`, copied into the report as attention.png."""
    source = Path(entry(job, image)["png"])
    path = Path(out) / "attention.png"
    commit_temp(write_temp(path, lambda f: f.write(source.read_bytes())), path)
    return path


def compare_attention(jobs: list[Path], image: int, out: Path) -> Path:
    """Spatial maps of several jobs for the same image (e.g. DETR vs Conditional DETR, the paper's Figure 1),
    from their saved maps; attention_comparison.png in `out`."""
    found = [(job, entry(job, image)) for job in jobs]
    rows, boxes, picture, gt = {}, {}, None, None
    for job, item in found:
        maps = attention_files.load_maps(item["maps"])
        label = f"{item.get('label', job.name)}\nseed {item.get('seed', '?')}, step {item.get('step', '?')}"
        rows[label], boxes[label] = maps["spatial"], maps["pred_box"]
        picture, gt = (maps["picture"], maps["gt_box"]) if picture is None else (picture, gt)
    return draw_attention_comparison(picture, gt, rows, Path(out) / "attention_comparison.png",
                                     title=f"Spatial attention maps, validation image {image}", pred_boxes=boxes)

