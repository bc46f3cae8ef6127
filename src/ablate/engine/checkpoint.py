"""Checkpoints: written atomically with the previous one kept, loaded safely (``weights_only=True``),
and checked against the config so a checkpoint of another variant is refused with the keys that differ."""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import numpy as np
import torch

from ablate.runs.atomic import commit_temp, write_temp
from ablate.runs.files import RunFiles

log = logging.getLogger(__name__)


class CheckpointMismatch(ValueError):
    """The checkpoint in the output folder was trained with a different effective config."""


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": list(random.getstate()[1]) + [random.getstate()[0]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[-1], tuple(py[:-1]), None))


def save_checkpoint(files: RunFiles, state: dict[str, Any]) -> None:
    """Write the new checkpoint fully, then rotate: current → ``checkpoint.prev.pt``, new → ``checkpoint.pt``.
    A crash or a full disk at any point leaves at least one complete checkpoint."""
    tmp = write_temp(files.checkpoint, lambda fh: torch.save(state, fh))
    if files.checkpoint.exists():
        os.replace(files.checkpoint, files.checkpoint_prev)
    commit_temp(tmp, files.checkpoint)


def load_checkpoint(files: RunFiles) -> dict[str, Any] | None:
    """The newest readable checkpoint (a truncated or corrupt one is skipped with a warning), or None."""
    for path in (files.checkpoint, files.checkpoint_prev):
        if not path.exists():
            continue
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, bad pickle, …: fall back to the previous checkpoint
            log.warning("checkpoint %s is unreadable (%s: %s); trying the previous one", path, type(e).__name__, e)
    return None


def check_compatible(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Compare the effective configs stored in a checkpoint and wanted now; raise naming the keys that differ."""
    diffs = sorted(_diff(saved, current))
    if diffs:
        shown = "; ".join(diffs[:8]) + (" …" if len(diffs) > 8 else "")
        raise CheckpointMismatch(f"the checkpoint in this output folder is of another variant: {shown}. "
                                 "Use a new output folder, or the config the checkpoint was trained with.")


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(f"{key}: {a.get(k, '<absent>')!r} in the checkpoint, {b.get(k, '<absent>')!r} now")
            else:
                out += _diff(a[k], b[k], key)
        return out
    return [] if a == b else [f"{prefix}: {a!r} in the checkpoint, {b!r} now"]
