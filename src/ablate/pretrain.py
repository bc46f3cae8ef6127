"""Pretraining the tiny backbone: the laptop analogue of the paper's ImageNet-pretrained ResNet.

The paper's detectors start from a backbone that already knows objects, so the detection training it
measures is the decoder's: that is where DETR is slow and Conditional DETR fast. A from-scratch backbone
learns alongside the decoder and dilutes that difference. Here the tiny backbone learns to name the shape at
the centre of a 64 × 64 window (native scale, other shapes around it) on images of its own seed, never the
detection set's, then ships as ``src/ablate/models/weights/tiny_shapes.pt`` (its sha256 in
``tiny_shapes.json``, checked by the tests)::

    python -m ablate.pretrain                       # writes the shipped file (3 min on one Xeon core)
    python -m ablate.pretrain --out my.pt --steps 50

The result is deterministic for a given torch version and thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor, nn
from torchvision.transforms.v2.functional import normalize
from tqdm import tqdm

from ablate.config import config_dir
from ablate.data.config import ShapesConfig
from ablate.data.shapes import CATEGORIES, render_image
from ablate.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ablate.models.backbone import SHIPPED_WEIGHTS, TinyBackbone
from ablate.runs.atomic import atomic_torch_save, atomic_write_json

SHIPPED = SHIPPED_WEIGHTS / "tiny_shapes.pt"
WINDOW = 64
DATA_SEED = 20211001  # not the detection set's seed (1234): the backbone never sees its images
WIDTHS = list(OmegaConf.load(config_dir() / "model" / "tiny.yaml").model.backbone.widths)  # model=tiny's backbone


def crop_windows(num_images: int, seed: int = DATA_SEED) -> tuple[Tensor, Tensor]:
    """(N, 3, 64, 64) uint8 windows centred (±8 px) on each object, and their 0-based class labels."""
    cfg = ShapesConfig(seed=seed)
    half = WINDOW // 2
    windows, labels = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, 2, index])  # stream 2: neither train (0) nor val (1) of any set
        pixels, objects = render_image(rng, cfg)
        padded = np.pad(pixels, ((half, half), (half, half), (0, 0)), mode="edge")
        for category_id, (x, y, w, h), _ in objects:
            cx, cy = int(x + w / 2) + int(rng.integers(-8, 9)), int(y + h / 2) + int(rng.integers(-8, 9))
            cx, cy = min(max(cx, 0), cfg.image_size), min(max(cy, 0), cfg.image_size)
            windows.append(padded[cy : cy + WINDOW, cx : cx + WINDOW])
            labels.append(category_id - 1)
    return torch.from_numpy(np.stack(windows)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)


class Classifier(nn.Module):
    """The tiny backbone, global average pooling and one linear layer."""

    def __init__(self, widths: list[int]):
        super().__init__()
        self.backbone = TinyBackbone(widths)
        self.head = nn.Linear(self.backbone.num_channels, len(CATEGORIES))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(images).mean(dim=(2, 3)))


def normalise(windows: Tensor) -> Tensor:
    """uint8 → the detector's input normalisation (``ablate.data.transforms``' ImageNet mean and std)."""
    return normalize(windows.float() / 255, list(IMAGENET_MEAN), list(IMAGENET_STD))


def pretrain(
    *, steps: int, num_images: int, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, progress: bool = True
) -> tuple[dict[str, Tensor], dict]:
    """Train the classifier; returns the backbone's state dict and a summary (accuracy on held-out windows)."""
    torch.manual_seed(seed)
    windows, labels = crop_windows(num_images)
    held_out, held_labels = crop_windows(max(num_images // 10, 20), seed=DATA_SEED + 1)
    model = Classifier(WIDTHS).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="pretraining the tiny backbone", disable=not progress):
        index = torch.randint(len(windows), (batch_size,), generator=generator)
        images = normalise(windows[index])
        flip = torch.rand(batch_size, generator=generator) < 0.5
        images[flip] = images[flip].flip(-1)
        loss = F.cross_entropy(model(images.contiguous(memory_format=torch.channels_last)), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(normalise(held_out)).argmax(1) == held_labels).float().mean().item()
    summary = {"steps": steps, "num_images": num_images, "windows": len(windows), "batch_size": batch_size,
               "lr": lr, "seed": seed, "first_loss": losses[0], "final_loss": float(np.mean(losses[-20:])),
               "held_out_accuracy": accuracy, "held_out_windows": len(held_out), "chance": 1 / len(CATEGORIES)}
    return model.backbone.state_dict(), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablate.pretrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SHIPPED, help="state-dict file to write (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--images", type=int, default=3000, help="rendered images (≈ 2.9 windows each)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.images < 1:
        print("ablate: --steps and --images must be ≥ 1", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # one thread: the same bytes on every machine of a torch version
    start = time.perf_counter()
    state, summary = pretrain(steps=args.steps, num_images=args.images, seed=args.seed)
    atomic_torch_save(state, args.out)
    summary |= {"sha256": hashlib.sha256(args.out.read_bytes()).hexdigest(),
                "seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__,
                "command": " ".join(["python -m ablate.pretrain", *(argv or sys.argv[1:])])}
    atomic_write_json(args.out.with_suffix(".json"), summary)
    print(f"{args.out}: held-out accuracy {summary['held_out_accuracy']:.3f} (chance {summary['chance']:.2f}), "
          f"sha256 {summary['sha256'][:16]}…, {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
