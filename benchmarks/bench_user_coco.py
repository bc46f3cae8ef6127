"""A user's own small COCO set trained with the default model: wall time, peak RSS, AP50, and the AP recomputed.

The set (not in the repo, written to a temporary folder): 600 training and 150 validation images of 112–144 px
(varying, square and not), drawn by the shapes renderer with other sizes and seeds than the embedded set, saved
under COCO-2017 file names with *foreign* ids — non-contiguous category ids (3, 17, 42, 58, 90) and names,
image ids from 100,001 — the way a data set exported from a labelling tool looks. Then, as a user types it::

    python -m ablate data=coco data.root=DIR logger=none

is timed as one process (``/usr/bin/time -v``: wall time and peak RSS), and plain pycocotools on the run's
``detections.json`` and the validation annotation file recomputes the AP the run reports.

    python benchmarks/bench_user_coco.py            # the full default schedule (minutes)
    python benchmarks/bench_user_coco.py --quick    # 20 steps
Writes benchmarks/results/user_coco.{json,md} (``bench_common.write_result``, with the machine).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import machine, write_result
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ablate.data.config import ShapesConfig
from ablate.data.shapes import CATEGORIES, render_image

IDS = [3, 17, 42, 58, 90]
NAMES = ["box", "disc", "wedge", "plus", "hoop"]  # CATEGORIES in another vocabulary


def write_split(root: Path, split: str, count: int, seed: int) -> None:
    folder = root / f"{split}2017"
    folder.mkdir(parents=True)
    images, annotations = [], []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        size = int(rng.integers(112, 145))
        pixels, objects = render_image(rng, ShapesConfig(image_size=size, max_size=size // 2, seed=seed))
        if index % 3 == 0:  # every third image is landscape: crop rows
            cut = int(rng.integers(8, 24))
            pixels = pixels[cut:]
            objects = [(c, [x, y - cut, w, h], a) for c, (x, y, w, h), a in objects if y + h - cut > 4]
            objects = [(c, [x, max(y, 0.0), w, h + min(y, 0.0)], a) for c, (x, y, w, h), a in objects]
        image_id = 100_001 + index
        name = f"{image_id:012d}.jpg"
        Image.fromarray(pixels).save(folder / name, quality=92)
        images.append({"id": image_id, "file_name": name, "height": pixels.shape[0], "width": pixels.shape[1]})
        for category_id, bbox, area in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "bbox": bbox, "iscrowd": 0,
                                "area": float(min(area, bbox[2] * bbox[3])), "category_id": IDS[category_id - 1]})
    (root / "annotations").mkdir(exist_ok=True)
    categories = [{"id": i, "name": n, "supercategory": "shape"} for i, n in zip(IDS, NAMES)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(coco))


def recompute(ann: Path, detections: Path) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        dets = json.loads(detections.read_text())
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "detections": len(dets),
            "category_ids": sorted({d["category_id"] for d in dets})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", type=Path, help="write the data set and the run here instead of a temp folder")
    args = parser.parse_args()
    assert len(CATEGORIES) == len(IDS)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        data, run = root / "coco", root / "run"
        write_split(data, "train", 600, seed=7)
        write_split(data, "val", 150, seed=8)
        extra = ["train.max_steps=20", "eval.batch_size=50"] if args.quick else []
        cmd = [sys.executable, "-m", "ablate", "data=coco", f"data.root={data}", "logger=none",
               f"hydra.run.dir={run}", *extra]
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return 1
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
        cpu_s = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1))
                    for k in ("User", "System"))
        result = json.loads((run / "result.json").read_text())
        again = recompute(data / "annotations" / "instances_val2017.json", run / "detections.json")
        sizes = next(line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "px" in line)
    host = machine()
    out = {"quick": args.quick, "command": " ".join(cmd[1:]), "wall_s": round(wall, 1), "cpu_s": round(cpu_s, 1),
           "peak_rss_gb": round(rss_kb / 2**20, 2), "steps": result.get("steps"), "reported": result["metrics"],
           "recomputed": again, "sizes_line": sizes.strip(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    r, a = result["metrics"], again
    md = [f"## A user's 600-image COCO set of 112–144 px images, default model ({'quick' if args.quick else 'full'})",
          "", f"{host['cpu']}, {host['cores']} cores, {out['date']}, one uninterrupted run of `{out['command']}` "
          "(`/usr/bin/time -v`).", "",
          "| wall time | CPU time | peak RSS | steps | AP50 reported | AP50 pycocotools on detections.json | AP reported | AP recomputed |",
          "|---|---|---|---|---|---|---|---|",
          f"| {wall:.0f} s ({wall / 60:.1f} min) | {cpu_s:.0f} s | {out['peak_rss_gb']} GB | {out['steps']} | "
          f"{r.get('AP50', float('nan')):.4f} | {a['AP50']:.4f} | {r.get('AP', float('nan')):.4f} | {a['AP']:.4f} |", "",
          f"Sizes as the run printed them: `{sizes.strip()}`", "",
          f"Category ids in detections.json: {a['category_ids']} (the data set's: {IDS}); {a['detections']} detections.",
          "Chance: a detector that puts one box of the right size at a random place scores AP50 ≈ 0."]
    write_result("user_coco_quick" if args.quick else "user_coco", out, "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
