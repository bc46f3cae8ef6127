"""A trained job as a ready-to-use detector: ``from_run(RUN_DIR)`` and ``Predictor.predict(images)``.

A job folder holds everything needed: ``.hydra/config.yaml`` (the model and the validation preprocessing) and
``checkpoint.pt`` (the weights, and the data set's categories for runs that recorded them). The data set itself
is not needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor, nn
from torchvision import tv_tensors

from ablate.data.coco import _to_rgb_array
from ablate.data.transforms import build_transforms
from ablate.models.builder import build_model
from ablate.models.detector import Detector
from ablate.models.postprocess import postprocess
from ablate.runs.files import RunFiles

log = logging.getLogger(__name__)

ImageLike = Union[Image.Image, Tensor]


class RunError(ValueError):
    """A folder that is not a usable trained job; the message names the file and what is wrong with it."""


class Predictor(nn.Module):
    """A trained :class:`~ablate.models.detector.Detector` with the config it was trained with.

    Calling it is calling the detector (same inputs and outputs); :meth:`predict` goes from raw images to
    detections in pixels. ``model`` is the detector, ``cfg`` the run's config, ``categories`` maps the data
    set's category ids to names.
    """

    def __init__(self, model: Detector, cfg: DictConfig, categories: dict[int, str] | None = None) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg
        self.categories = dict(categories or {})
        self.transform = build_transforms(cfg.data, train=False)  # the validation pipeline, as in evaluation

    def forward(self, *args: Any, **kwargs: Any) -> dict:
        return self.model(*args, **kwargs)

    @torch.no_grad()
    def predict(self, images: ImageLike | Sequence[ImageLike], threshold: float = 0.5, *, batch_size: int = 1
                ) -> dict[str, Any] | list[dict[str, Any]]:
        """Detections for one image or a list of them, each a PIL image or a (3, H, W) tensor of any size:
        uint8, or float in [0, 1] (a (B, 3, H, W) tensor is B images).

        Returns per image (a single dict for a single image) ``boxes`` (N, 4) xyxy in the pixels of the image
        given, ``scores`` (N,), ``labels`` (N,) the data set's category ids and ``names`` (N category names),
        best first, the ``eval.top_k`` best at most, keeping scores ≥ ``threshold``. ``batch_size`` > 1 pads
        images together, which changes the detections slightly (padding enters the backbone's convolutions),
        as in evaluation.
        """
        single = isinstance(images, Image.Image) or (isinstance(images, Tensor) and images.dim() == 3)
        items = [images] if single else list(images)
        device = next(self.model.parameters()).device
        valid = self._valid_classes()
        out: list[dict[str, Any]] = []
        for start in range(0, len(items), batch_size):
            raw = [to_image_tensor(x) for x in items[start:start + batch_size]]
            inputs = [self.preprocess(x).to(device) for x in raw]
            sizes = torch.tensor([x.shape[-2:] for x in raw], device=device)
            outputs = self.model(inputs)
            for det in postprocess(outputs, sizes, focal=self.model.focal, top_k=self.cfg.eval.top_k,
                                   valid_classes=valid.to(device) if valid is not None else None):
                keep = det["scores"] >= threshold
                labels = det["labels"][keep].cpu()
                out.append({"boxes": det["boxes"][keep].cpu(), "scores": det["scores"][keep].cpu(),
                            "labels": labels, "names": [self.name(int(i)) for i in labels]})
        return out[0] if single else out

    def preprocess(self, image: Tensor) -> Tensor:
        """The run's validation transform (resize to ``data.val_size``, capped at ``data.max_size``; ImageNet
        normalisation) of a (3, H, W) uint8 or [0, 1] float image."""
        h, w = image.shape[-2:]
        empty = {"boxes": tv_tensors.BoundingBoxes(torch.zeros(0, 4), format="XYXY", canvas_size=(h, w)),
                 "labels": torch.zeros(0, dtype=torch.int64)}
        return self.transform(tv_tensors.Image(image), empty)[0]

    def name(self, category_id: int) -> str:
        """The category's name; its id as text for runs that did not record names."""
        return self.categories.get(category_id, str(category_id))

    def _valid_classes(self) -> Tensor | None:
        """The ids the data set uses (evaluation ranks only those); None (all) for runs without categories."""
        if not self.categories:
            return None
        valid = torch.zeros(self.model.num_classes, dtype=torch.bool)
        valid[[i for i in self.categories if 0 <= i < self.model.num_classes]] = True
        return valid


def to_image_tensor(image: ImageLike) -> Tensor:
    """(3, H, W) uint8 or float in [0, 1] from a PIL image (any mode, as the data set decodes it) or a tensor."""
    if isinstance(image, Image.Image):
        return torch.from_numpy(_to_rgb_array(image)).permute(2, 0, 1)
    if not isinstance(image, Tensor):
        raise TypeError(f"predict takes PIL images or (3, H, W) tensors, not {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"an image tensor must be (3, H, W) or (1, H, W), got shape {tuple(image.shape)}")
    if image.is_floating_point():
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"a float image must be in [0, 1], got values in [{lo:g}, {hi:g}] "
                             "(pass uint8 for 0-255 values)")
    elif image.dtype != torch.uint8:
        raise ValueError(f"an image tensor must be uint8 or float in [0, 1], got {image.dtype}")
    return image.expand(3, -1, -1).cpu()


def run_folder(run: str | Path) -> Path:
    """The job folder of ``run``: the folder itself, or the folder of its result.json or checkpoint.pt."""
    path = Path(run)
    if path.is_file() and path.name in ("result.json", "checkpoint.pt"):
        path = path.parent
    if not path.is_dir():
        raise RunError(f"{run}: no such job folder")
    return path


def load_run_config(folder: Path) -> DictConfig:
    """The config the job ran with, over the current schema (so keys added since take their defaults)."""
    path = folder / ".hydra" / "config.yaml"
    if not path.is_file():
        if (folder / "multirun.yaml").is_file():
            raise RunError(f"{folder} is a sweep folder: pass one of its job folders")
        raise RunError(f"{folder}: no .hydra/config.yaml, not the folder of a `python -m ablate` job")
    try:
        saved = OmegaConf.load(path)
    except Exception as e:  # YAML syntax, not a mapping
        raise RunError(f"{path}: unreadable config ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    from ablate.config import Config

    try:
        return OmegaConf.merge(OmegaConf.structured(Config), saved)
    except Exception:  # a key the schema has dropped since: the saved config alone still builds the model
        return saved


def read_checkpoint_state(folder: Path) -> dict[str, Any]:
    """checkpoint.pt of the job, read without executing anything (``weights_only``) and without touching it."""
    files = RunFiles(folder)
    status = (files.read_result() or {}).get("status")
    if not files.checkpoint.is_file():
        raise RunError(f"{folder}: no checkpoint.pt (result.json status: {status or 'missing'})")
    try:
        ckpt = torch.load(files.checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle
        raise RunError(f"{files.checkpoint}: unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise RunError(f"{files.checkpoint}: not a checkpoint of ablate (no 'model' weights)")
    if status != "finished":
        log.warning("%s is %s: using its last checkpoint (step %s)", folder, status or "without result.json",
                    ckpt.get("step", "?"))
    return ckpt


def from_run(run: str | Path, *, device: str | torch.device = "cpu") -> Predictor:
    """The trained model of a job folder (or of its result.json / checkpoint.pt), in eval mode on ``device``."""
    folder = run_folder(run)
    cfg = load_run_config(folder)
    ckpt = read_checkpoint_state(folder)
    state = ckpt["model"]
    if "class_embed.weight" not in state:
        raise RunError(f"{folder / 'checkpoint.pt'}: no class_embed.weight, not a detector of ablate")
    # the classifier's width is the class count (softmax adds the no-object logit): no data set needed
    num_classes = state["class_embed.weight"].shape[0] - (0 if cfg.focal else 1)
    # the checkpoint holds every weight: never re-read the files it was initialised from
    cfg.model.init_from = None
    cfg.model.backbone.weights = None
    for key, value in ckpt.get("input_size", {}).items():  # the sizes evaluation used (data.resolution=auto)
        cfg.data[key] = value
    model = build_model(cfg, num_classes=num_classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:300]
        raise RunError(f"{folder / 'checkpoint.pt'} does not fit the model of {folder}/.hydra/config.yaml: "
                       f"{detail}") from e
    categories = {int(c["id"]): str(c["name"]) for c in ckpt.get("categories", [])}
    return Predictor(model, cfg, categories).to(device).eval()
