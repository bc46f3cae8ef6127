"""``torchrun --nproc_per_node=2 -m ablate`` on CPU (gloo): one folder, one result and W&B run, single-process numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# R50 with FrozenBatchNorm, no dropout, no random augmentation: nothing depends on how the global batch is split,
# so 2 ranks × 2 images and 1 process × 4 images compute the same gradients up to float summation order.
# (The tiny backbone's BatchNorm would see 2-image batches per rank: see docs/scaling.md for that difference.)
SPLIT_FREE = [
    "model=r50", "model.hidden_dim=32", "model.nheads=4", "model.dim_feedforward=64", "model.enc_layers=1",
    "model.dec_layers=2", "model.num_queries=20", "model.dropout=0.0", "train.max_steps=4", "train.log_every=1",
    "eval.batch_size=8", "data.shapes.num_train=40", "data.shapes.num_val=9", "data.shapes.image_size=64",
    "data.train_scales=[64]", "data.max_size=64", "data.val_size=64", "data.flip=false", "train.device=cpu",
    "train.num_threads=1",
]
TINY = [
    "logger=none", "train.max_steps=2", "train.batch_size=2", "eval.batch_size=8", "data.shapes.num_train=20",
    "data.shapes.num_val=4", "model.backbone.widths=[8,16]", "model.hidden_dim=32", "model.dim_feedforward=64",
    "model.enc_layers=1", "model.dec_layers=2", "train.device=cpu", "train.num_threads=1",
]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ablate"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1",
            "ABLATE_CACHE": str(tmp_path_factory.mktemp("cache"))}


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]


def lines(folder: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_two_ranks_write_one_run_equal_to_one_process(tmp_path: Path, env: dict[str, str]) -> None:
    single = tmp_path / "single"
    run([sys.executable, "-m", "ablate", *SPLIT_FREE, "logger=none", "train.batch_size=4",
         f"hydra.run.dir={single}"], tmp_path, env)
    # no hydra.run.dir: each rank's ${now:} would differ; the ranks must still share rank 0's folder
    (tmp_path / "ddp").mkdir()
    run([*TORCHRUN, *SPLIT_FREE, "logger=wandb", "logger.mode=offline", "train.batch_size=2"], tmp_path / "ddp", env)

    [ddp] = (tmp_path / "ddp" / "outputs" / "runs").glob("*/*")
    result = json.loads((ddp / "result.json").read_text())
    assert (result["status"], result["world_size"], result["effective_batch_size"]) == ("finished", 2, 4)
    assert len(list((ddp / "wandb").glob("offline-run-*"))) == 1
    assert len(lines(ddp, "train")) == 4 and len(lines(ddp, "eval")) == 1  # rank 0 alone writes

    # every one of the 9 validation images once (the sampler pads rank 1 with a repeat)
    dets = json.loads((ddp / "detections.json").read_text())
    assert len(dets) == len(json.loads((single / "detections.json").read_text()))
    assert len({d["image_id"] for d in dets}) == 9

    # measured: AP identical, losses and weights equal to float rounding (~1e-7)
    assert result["metrics"]["AP"] == pytest.approx(json.loads((single / "result.json").read_text())["metrics"]["AP"],
                                                    abs=1e-6)
    for a, b in zip(lines(single, "train"), lines(ddp, "train"), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    wa, wb = (torch.load(f / "checkpoint.pt", weights_only=True)["model"] for f in (single, ddp))
    assert max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa) < 1e-5


def test_sweep_under_torchrun_shares_the_folder_and_the_duplicate_verdict(tmp_path: Path, env: dict[str, str]) -> None:
    # job 1 is job 0 again: rank 0's claim says "duplicate" and rank 1 must follow it, not train alone (and hang)
    run([*TORCHRUN, "-m", *TINY, "train.seed=0,0"], tmp_path, env)
    [sweep] = (tmp_path / "outputs" / "multirun").glob("*/*")
    status = sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/result.json"))
    assert status == ["duplicate", "finished"]
    assert (sweep / "report" / "index.md").exists()
