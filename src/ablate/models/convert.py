"""Load the authors' checkpoints (Atten4Vis/ConditionalDETR and facebookresearch/detr) into our modules.

Our parameter names follow theirs except where an ablation axis owns a module: T (their ``query_scale``)
lives in the ``csq``/``proj`` registry entry and the reference head in the ``ref`` entry.
"""

from __future__ import annotations

from collections import defaultdict

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


class StateDictMismatch(ValueError):
    """Weights that do not fit the model: missing, unexpected or mis-shaped keys, grouped by module."""


def load_pretrained(model: nn.Module, state: dict[str, Tensor], *, allow_missing_prefixes: tuple[str, ...] = ()
                    ) -> None:
    """Load converted weights strictly, naming the keys that differ when the checkpoint is another variant.
    ``num_batches_tracked`` is a counter, not a weight: it is neither required nor loaded."""
    state = convert_state_dict(state)
    own = model.state_dict()
    problems = {
        "missing": [k for k in own if k not in state and not k.endswith("num_batches_tracked")
                    and not k.startswith(allow_missing_prefixes)],
        "unexpected": [k for k in state if k not in own],
        "shape": [k for k in state if k in own and state[k].shape != own[k].shape],
    }
    if any(problems.values()):
        raise StateDictMismatch("; ".join(f"{kind}: {_by_module(keys, state, own, kind)}"
                                          for kind, keys in problems.items() if keys))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)


def _by_module(keys: list[str], state: dict, own: dict, kind: str) -> str:
    """Keys grouped by their module (two name levels), with counts and one example each."""
    groups: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        groups[".".join(k.split(".")[:2])].append(k)
    parts = []
    for module, ks in list(groups.items())[:8]:
        example = ks[0] if kind != "shape" else f"{ks[0]} {tuple(state[ks[0]].shape)} vs {tuple(own[ks[0]].shape)}"
        parts.append(f"{module} ({len(ks)}, e.g. {example})")
    return ", ".join(parts) + (f", and {len(groups) - 8} more modules" if len(groups) > 8 else "")
