"""Load the authors' checkpoints (Atten4Vis/ConditionalDETR and facebookresearch/detr) into our modules.

Our parameter names follow theirs except where an ablation axis owns a module: T (their ``query_scale``)
lives in the ``csq``/``proj`` registry entry and the reference head in the ``ref`` entry.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

RENAMES = (
    ("backbone.0.body.", "backbone.body."),
    ("transformer.decoder.query_scale.", "transformer.decoder.spatial_query.proj.mlp."),
    ("transformer.decoder.ref_point_head.", "reference.mlp."),
)


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Authors' key names → ours (keys that are already ours pass through unchanged)."""
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        for old, new in RENAMES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The model state dict from a checkpoint of ours ({"model": …}) or of the authors' ({"model": …, "args": …})."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model.init_from: no such file {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's message would suggest weights_only=False, i.e. running the file's code
        raise ValueError(f"model.init_from={path} is not a checkpoint that loads safely (only tensors and plain "
                         f"containers are read): {type(e).__name__}") from None
    state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
    if not (isinstance(state, dict) and state and all(torch.is_tensor(v) for v in state.values())):
        raise ValueError(f"model.init_from={path} holds no model state dict (name → tensor)")
    return state


def load_pretrained(model: nn.Module, state: dict[str, Tensor], *, allow_missing_prefixes: tuple[str, ...] = ()
                    ) -> None:
    """Load converted weights strictly, naming the keys that differ when the checkpoint is another variant."""
    state = convert_state_dict(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(allow_missing_prefixes)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise ValueError(
            "checkpoint does not fit this model (is it another variant?): "
            + "; ".join(f"{name}: {', '.join(keys[:6])}{' …' if len(keys) > 6 else ''}"
                        for name, keys in (("missing", missing), ("unexpected", unexpected),
                                           ("shape", mismatched)) if keys)
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
