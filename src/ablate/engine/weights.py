"""``model.init_from``: where weights to start from (or evaluate) come from, and loading them with a clear error.

A source is a job folder (its ``checkpoint.pt``), a checkpoint file of ours, or one of the authors' released
checkpoints (Atten4Vis/ConditionalDETR, facebookresearch/detr: converted by ``ablate.models.convert``).
Files are read with ``weights_only=True``: nothing in them is executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ablate.models.convert import StateDictMismatch, load_pretrained

CHECKPOINT_NAME = "checkpoint.pt"


class WeightsError(ValueError):
    """``model.init_from`` names something that cannot be read or does not fit the model; the message says what."""


def resolve(source: str, *, wandb_mode: str = "online") -> Path:
    """The checkpoint file a ``model.init_from`` value names (a job folder → its ``checkpoint.pt``; a W&B model
    artifact ``wandb:ENTITY/PROJECT/NAME:VERSION`` → its downloaded file, online only)."""
    if source.startswith("wandb:"):
        from ablate.runs.wandb_source import resolve_wandb_source

        return resolve_wandb_source(source, mode=wandb_mode)
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_NAME
        if not path.is_file():
            raise WeightsError(f"model.init_from={source}: the folder has no {CHECKPOINT_NAME} (is it a job folder "
                               "whose training started?)")
    elif not path.exists():
        raise WeightsError(f"model.init_from: no such file {source} (give a job folder, a checkpoint file or "
                           "wandb:ENTITY/PROJECT/NAME:VERSION)")
    elif not path.is_file():
        raise WeightsError(f"model.init_from={source}: not a regular file")
    return path


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the model's state dict, what the file says about itself: ``step``, ``variant`` where it is ours)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a zip/pickle, truncated, or a pickle that asks for code (refused, not run)
        # torch's own message would suggest weights_only=False, i.e. running the file's code: never repeated
        raise WeightsError(f"model.init_from={path} is not a checkpoint that loads safely (only tensors and plain "
                           f"containers are read): {type(e).__name__}") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsError(f"model.init_from: {path} holds no model state dict")
    about: dict[str, Any] = {"path": str(path)}
    if isinstance(ckpt, dict) and isinstance(ckpt.get("effective_config"), dict):  # one of ours
        eff = ckpt["effective_config"]
        about["step"] = ckpt.get("step")
        about["variant"] = " ".join(f"{k}={_axis(eff.get(k))}" for k in ("csq", "proj", "ref", "focal", "offset"))
        about["model"] = (eff.get("model") or {}).get("name")
    return state, about


def load(model: nn.Module, source: str, *, wandb_mode: str = "online") -> dict[str, Any]:
    """Load ``source`` into ``model`` strictly (converting the authors' key names); returns what was loaded."""
    path = resolve(source, wandb_mode=wandb_mode)
    state, about = read(path)
    try:
        load_pretrained(model, state)
    except StateDictMismatch as e:
        trained = f" (trained as {about['variant']}, model={about.get('model')})" if "variant" in about else ""
        raise WeightsError(f"model.init_from: {path}{trained} does not fit this model — {e}") from None
    return about


def _axis(v: Any) -> str:
    if isinstance(v, dict):
        v = v.get("name")
    return str(v).lower() if isinstance(v, bool) else str(v)
