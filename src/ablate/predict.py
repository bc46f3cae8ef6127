"""``python -m ablate.predict RUN_DIR IMAGE_OR_DIR... [--out DIR] [--threshold T]``: a trained job's detections
on any images, drawn (one PNG per image) and as COCO results.

Writes into ``--out`` (default ``RUN_DIR/predictions``): ``<image stem>.png`` with the boxes, category names and
scores drawn; ``detections.json`` (COCO results format, boxes in the pixels of the image given, the data set's
category ids); ``images.json`` (COCO ``images`` and ``categories``: which file each ``image_id`` is). Every
input is checked before anything is written: a bad path, a folder without images or a file that is not an
image stops with one ``ablate:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import inspect
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import torch
from PIL import Image, ImageOps
from torchvision.ops import clip_boxes_to_image
from torchvision.utils import draw_bounding_boxes
from tqdm import tqdm

from ablate.engine.coco_eval import to_coco_results
from ablate.inference import Predictor, RunError, from_run, to_image_tensor
from ablate.runs.atomic import atomic_write_bytes, atomic_write_json

# tab10: distinct at a glance; a category keeps its colour across images
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
_PROGRESS_FROM = 8  # images; below this a progress bar is noise


class InputError(ValueError):
    """An image argument that cannot be used; the message names it."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ablate.predict",
                                     description="Draw a trained job's detections on images.")
    parser.add_argument("run", type=Path, metavar="RUN_DIR", help="a job folder (with checkpoint.pt)")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE_OR_DIR",
                        help="image files, or folders (their image files, not recursive)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: RUN_DIR/predictions)")
    parser.add_argument("--threshold", type=float, default=0.5, help="keep detections scoring at least this")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def image_extensions() -> set[str]:
    """File endings PIL can open (a folder's other files are skipped)."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def collect_images(args: Sequence[Path]) -> list[Path]:
    """The image files named or inside the folders named, in order, each once."""
    found: list[Path] = []
    extensions = image_extensions()
    for arg in args:
        if arg.is_dir():
            inside = sorted(p for p in arg.iterdir() if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() in extensions)
            if not inside:
                raise InputError(f"{arg}: no image files in this folder")
            found += inside
        elif arg.is_file():
            found.append(arg)
        else:
            raise InputError(f"{arg}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    names: dict[str, Path] = {}
    for path in unique:
        if (other := names.setdefault(f"{path.stem}.png", path)) != path:
            raise InputError(f"{other} and {path} would both be drawn as {path.stem}.png; predict them separately")
    return unique


def load_image(path: Path) -> torch.Tensor:
    """uint8 (3, H, W), upright as a viewer shows it (EXIF orientation applied)."""
    try:
        with Image.open(path) as img:
            return to_image_tensor(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: not a readable image ({' '.join(str(e).split())[:200]})") from e


def draw(image: torch.Tensor, det: dict, width: int) -> bytes:
    """PNG bytes of ``image`` with the detections' boxes and "name score" labels."""
    h, w = image.shape[-2:]
    boxes = clip_boxes_to_image(det["boxes"], (h, w))  # drawn inside the picture; detections.json keeps them as is
    labels = [f"{name} {score:.2f}" for name, score in zip(det["names"], det["scores"].tolist())]
    colors = [PALETTE[int(i) % len(PALETTE)] for i in det["labels"]]
    if not len(boxes):
        return png_bytes(image)
    font = {"font": str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"),
            "font_size": max(10, round(min(h, w) / 32))}  # the default bitmap font is unreadably small on photos
    if "fill_labels" in inspect.signature(draw_bounding_boxes).parameters:  # torchvision ≥ 0.23
        font["fill_labels"] = True  # text on the box colour: readable on any background
    return png_bytes(draw_bounding_boxes(image, boxes, labels=labels, colors=colors, width=width, **font))


def png_bytes(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def predict_files(model: Predictor, paths: list[Path], out: Path, threshold: float) -> int:
    """Draw and record every image; returns the number of detections."""
    images, detections = [], []
    for image_id, path in enumerate(tqdm(paths, desc="predict", disable=len(paths) < _PROGRESS_FROM), start=1):
        image = load_image(path)
        det = model.predict(image, threshold=threshold)
        h, w = image.shape[-2:]
        atomic_write_bytes(out / f"{path.stem}.png", draw(image, det, width=max(1, round(min(h, w) / 200))))
        detections += to_coco_results([det], [image_id])
        images.append({"id": image_id, "file_name": path.name, "path": str(path), "width": w, "height": h,
                       "drawn": f"{path.stem}.png"})
    categories = [{"id": i, "name": n} for i, n in sorted(model.categories.items())]
    atomic_write_json(out / "images.json", {"images": images, "categories": categories})
    atomic_write_json(out / "detections.json", detections, indent=None)
    return len(detections)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if not 0 <= args.threshold <= 1:
            raise InputError(f"--threshold {args.threshold}: must be in [0, 1]")
        paths = collect_images(args.images)
        for path in paths:  # every input decodes before the first file is written
            load_image(path)
        model = from_run(args.run, device=args.device)
    except (InputError, RunError) as e:
        print(f"ablate: {e}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else args.run / "predictions"
    try:
        count = predict_files(model, paths, out, args.threshold)
    except OSError as e:  # a full disk, a file where the folder should be
        print(f"ablate: {e.filename or out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"{len(paths)} image(s), {count} detection(s) with score ≥ {args.threshold}: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
