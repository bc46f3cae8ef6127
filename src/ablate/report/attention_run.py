"""Seam for `--attention-run JOBDIR`: build the job's model, run it on an image, draw its attention maps.

The model side lives in `ablate.models`; until it exposes the per-layer maps this hook says so clearly. Contract for
the wiring: return an `AttentionFn` that, given the report folder, calls `attention.draw_attention` (and
optionally `draw_attention_comparison`) with `maps_for_query(outputs[layer], image, query)` and returns the paths.
"""

from __future__ import annotations

from pathlib import Path

from ablate.report.attention import AttentionFn


def make_attention_fn(job_dir: Path) -> AttentionFn:
    """The attention hook for a finished job folder (needs its checkpoint.pt)."""
    job_dir = Path(job_dir)
    if not (job_dir / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"{job_dir} has no checkpoint.pt to draw attention maps from")
    raise NotImplementedError(
        "attention maps from a run need the model to return its per-layer attention maps "
        "(ablate.models, not wired yet); call write_report(..., attention_fn=...) with your own hook meanwhile"
    )
