"""Checkpoints: written atomically with the previous one kept, loaded safely (``weights_only=True``),
and checked against the config so a checkpoint of another variant is refused with the keys that differ."""

from __future__ import annotations

import json
import logging
import os
import random
from typing import Any

import numpy as np
import torch

from ablate.runs.atomic import atomic_write_text
from ablate.runs.files import RunFiles

log = logging.getLogger(__name__)

# What ``train`` stores; a file without these keys is not a resumable checkpoint of ours.
REQUIRED_KEYS = ("model", "optimizer", "scheduler", "step", "rng", "effective_config")


class CheckpointMismatch(ValueError):
    """The checkpoint in the output folder was trained with a different effective config."""


def rng_state() -> dict[str, Any]:
    """Every RNG the training step draws from (augmentation uses torch's global generator)."""
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

    A crash or a full disk at any point leaves at least one complete checkpoint; a failed write raises
    ``OSError`` naming the file, and the previous checkpoints are untouched.
    """
    # A SIGKILL mid-write leaves a hidden temp file as big as a checkpoint; never let those pile up.
    for stale in files.output_dir.glob(f".{files.checkpoint.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    files.save_checkpoint(state)


def load_checkpoint(files: RunFiles, *, mmap: bool = False) -> dict[str, Any] | None:
    """The newest usable checkpoint, or None when there is none.

    A truncated, corrupt or foreign ``checkpoint.pt`` is skipped with a warning and moved aside to
    ``checkpoint.pt.corrupt`` (so the next rotation cannot push the good ``checkpoint.prev.pt`` out), and
    ``checkpoint.prev.pt`` is used. ``weights_only=True``: nothing in the file is executed. ``mmap=True`` reads
    lazily, for a cheap look at the stored config.
    """
    for path in (files.checkpoint, files.checkpoint_prev):
        if not path.is_file():
            continue
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            missing = [k for k in REQUIRED_KEYS if k not in ckpt] if isinstance(ckpt, dict) else list(REQUIRED_KEYS)
            if missing:
                raise ValueError(f"not a training checkpoint (missing {', '.join(missing)})")
        except Exception as e:  # truncated zip, bad pickle, disallowed global, wrong content
            fallback = ("using the previous one" if path == files.checkpoint and files.checkpoint_prev.is_file()
                        else "starting from scratch")
            log.warning("checkpoint %s is unreadable (%s: %s); %s", path, type(e).__name__, _reason(e), fallback)
            try:
                os.replace(path, path.with_name(path.name + ".corrupt"))
            except OSError:  # another rank moved it first, or a read-only folder: the warning stands
                pass
            continue
        return ckpt
    return None


def restore(files: RunFiles, effective: dict[str, Any], parts: dict[str, Any], state: Any) -> int | None:
    """Resume from the job folder's newest usable checkpoint, if any: check it is of this config (raising
    ``CheckpointMismatch`` naming the keys that differ, before anything else is touched), then load every part
    (``{"model": …, "optimizer": …, "scheduler": …}``), the RNG state and the training state. Returns its step."""
    ckpt = load_checkpoint(files)
    if ckpt is None:
        return None
    check_compatible(ckpt["effective_config"], effective)
    for key, part in parts.items():
        part.load_state_dict(ckpt[key])
    set_rng_state(ckpt["rng"])
    state.step = state.resumed_from = int(ckpt["step"])
    state.history = list(ckpt.get("history", []))
    state.window = ckpt.get("log_window", state.window)
    state.elapsed_s = float(ckpt.get("elapsed_s", 0.0))
    log.info("resuming from step %d (%s)", state.step, files.checkpoint)
    return state.step


def snapshot(parts: dict[str, Any], state: Any, effective: dict[str, Any]) -> dict[str, Any]:
    """What ``restore`` reads back: every part's state, the step, RNG, history and log window, the config."""
    return {**{k: p.state_dict() for k, p in parts.items()}, "step": state.step, "rng": rng_state(),
            "effective_config": effective, "history": state.history, "log_window": state.window}


def check_compatible(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Compare the effective configs stored in a checkpoint and wanted now; raise naming the keys that differ."""
    diffs = sorted(_diff(saved, current))
    if diffs:
        shown = "; ".join(diffs[:8]) + (" …" if len(diffs) > 8 else "")
        raise CheckpointMismatch(f"the checkpoint in this output folder is of another variant: {shown}. "
                                 "Use a new output folder, or the config the checkpoint was trained with.")


def trim_metrics(files: RunFiles, step: int, eval_steps: set[int]) -> None:
    """Make ``metrics.jsonl`` end where the checkpoint does, as the resumed run logs the later steps again.

    Keeps training lines up to ``step`` and the evaluations the checkpoint's history holds; drops the rest,
    and any line a kill truncated.
    """
    if not files.metrics.is_file():
        return
    lines = [line for line in files.metrics.read_bytes().splitlines() if line.strip()]
    records = files.read_metrics()

    def keep(r: dict) -> bool:
        s = r.get("step")
        if not isinstance(s, (int, float)):
            return True
        return s in eval_steps if r.get("kind") == "eval" else s <= step

    kept = [r for r in records if keep(r)]
    if len(kept) != len(lines):
        atomic_write_text(files.metrics, "".join(json.dumps(r) + "\n" for r in kept))
        log.info("metrics.jsonl: dropped %d line(s) logged after the checkpoint", len(lines) - len(kept))


def _reason(e: Exception) -> str:
    """One line of why: torch's weights-only refusal is a page of advice around the line that matters."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [""]
    line = next((x for x in lines if x.startswith("WeightsUnpickler error:")), lines[0])
    return line[:300]


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
