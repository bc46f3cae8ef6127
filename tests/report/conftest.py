"""A fake sweep following docs/run_files.md: 3 variants x 2 seeds, plus a failed, a duplicate, a missing job, an
all-failed variant and a truncated metrics line. AP values are chosen so the table can be checked by hand."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

AXES = {
    "detr": {"csq": "detr", "proj": "n/a", "ref": "n/a", "focal": False, "offset": False},
    "C": {"csq": "C", "proj": "n/a", "ref": "query", "focal": True, "offset": True},
    "T": {"csq": "T", "proj": "diagonal", "ref": "query", "focal": True, "offset": True},
    "full": {"csq": "full", "proj": "diagonal", "ref": "query", "focal": True, "offset": True},
}
# (job number, variant, seed, status, final AP); AP50 = 2 AP, AP75 = 0.9 AP, APs = 0.5 AP, APm = AP, APl = 1.3 AP.
JOBS = [
    (0, "detr", 0, "finished", 0.10),
    (1, "detr", 1, "finished", 0.12),
    (2, "detr", 2, "missing", None),
    (3, "C", 0, "finished", 0.20),
    (4, "C", 1, "finished", 0.23),
    (5, "C", 2, "failed", None),
    (6, "full", 0, "finished", 0.30),
    (7, "full", 1, "finished", 0.34),
    (8, "full", 1, "duplicate", 0.34),
    (9, "T", 0, "failed", None),
]
STEPS = 200
LABELS = {v: " ".join(f"{k}={str(x).lower() if isinstance(x, bool) else x}" for k, x in a.items())
          for v, a in AXES.items()}
LOSS_FLOOR = {"detr": 3.0, "C": 2.2, "T": 2.0, "full": 1.5}


def metrics_for(ap: float) -> dict[str, float]:
    return {"AP": ap, "AP50": 2 * ap, "AP75": 0.9 * ap, "APs": 0.5 * ap, "APm": ap, "APl": 1.3 * ap}


def config_key(variant: str) -> str:
    return hashlib.sha1(LABELS[variant].encode()).hexdigest()


def job_dir(sweep: Path, num: int) -> Path:
    _, variant, seed, _, _ = JOBS[num]
    return sweep / f"{num}_csq={AXES[variant]['csq']},seed={seed}"


def _write_hydra(job: Path, variant: str, seed: int) -> None:
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- csq={AXES[variant]['csq']}\n- seed={seed}\n")
    (job / ".hydra" / "config.yaml").write_text(f"seed: {seed}\n")


def _curve_lines(variant: str, final_ap: float, last_step: int, seed: int) -> list[str]:
    # DETR's AP50 rises late (power 2), the conditional variants early (power 0.5): a visible speed-up.
    power = 2.0 if variant == "detr" else 0.5
    lines = []
    for step in range(10, last_step + 1, 10):
        loss = 8 * math.exp(-step / 60) + LOSS_FLOOR[variant] + 0.3 * math.sin(step + seed)
        lines.append(json.dumps({"kind": "train", "step": step, "epoch": step / 50, "lr": 1e-4, "loss": loss,
                                 "loss_ce": loss / 3, "loss_bbox": loss / 3, "loss_giou": loss / 3, "time_s": 1.0}))
        if step % 40 == 0:
            frac = (step / STEPS) ** power
            lines.append(json.dumps({"kind": "eval", "step": step, **{k: v * frac for k, v in
                                                                      metrics_for(final_ap).items()}, "time_s": 2}))
    return lines


def make_sweep(root: Path) -> Path:
    sweep = root / "multirun" / "2026-11-25_14-00-00"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    for num, variant, seed, status, ap in JOBS:
        job = job_dir(sweep, num)
        _write_hydra(job, variant, seed)
        if status == "missing":
            continue
        result = {
            "status": status, "axes": {**AXES[variant], "model": "tiny", "num_queries": 20},
            "variant": LABELS[variant], "config_key": config_key(variant), "seed": seed, "duplicate_of": None,
            "metrics": metrics_for(ap) if ap is not None else {}, "params": {"total": 1000, "trainable": 1000},
            "steps": STEPS, "wall_time_s": 60.0, "world_size": 1, "effective_batch_size": 8,
            "resumed_from": None, "error": None, "overrides": [f"csq={AXES[variant]['csq']}", f"seed={seed}"],
            "output_dir": str(job), "git_commit": "abc123", "wandb": {"mode": "offline", "id": f"id{num}"},
            "started_at": "2026-11-25T14:00:00+00:00", "finished_at": "2026-11-25T14:01:00+00:00",
        }
        if status == "duplicate":
            result["duplicate_of"] = str(job_dir(sweep, 7))
        if status == "failed":
            result["error"] = ({"message": "loss is NaN", "type": "FloatingPointError", "step": 120,
                                "traceback": "..."} if variant == "C" else
                               {"message": "CUDA out of memory", "type": "OutOfMemoryError", "step": 0,
                                "traceback": "..."})
        (job / "result.json").write_text(json.dumps(result, indent=2))
        if status == "finished":
            lines = _curve_lines(variant, ap, STEPS, seed)
            text = "\n".join(lines) + "\n"
            if num == 4:  # a killed writer's last line
                text += '{"kind": "train", "step": 210, "lo'
            (job / "metrics.jsonl").write_text(text)
        elif status == "failed" and variant == "C":
            (job / "metrics.jsonl").write_text("\n".join(_curve_lines(variant, 0.2, 120, seed)) + "\n")
    return sweep


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return make_sweep(tmp_path)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of the fake sweep, written once per test module (figures take a second or two)."""
    from ablate.report import write_report

    sweep = make_sweep(tmp_path_factory.mktemp("sweep"))
    return write_report([sweep], title="Fake sweep")
