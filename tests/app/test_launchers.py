"""Launcher presets (conf/hydra/launcher/): parallel (joblib), slurm_local (submitit), and the submitit requeue
contract (SIGUSR2: checkpoint first, then submitit's handler)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import DictConfig

import ablate.job as job_mod
from ablate.app import run_job
from ablate.config import compose
from tests.app.conftest import checkpoint_step, read_result


def sweep(tmp_path: Path, tiny: Callable[..., list[str]], *args: str) -> Path:
    out = tmp_path / "sweep"
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "-m", "ablate", "-m", *tiny("train.max_steps=2", *args), "logger=wandb",
                           "logger.mode=offline",
                           f"hydra.sweep.dir={out}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (out / "report" / "index.md").exists()
    return out


def results(out: Path) -> list[dict[str, Any]]:
    found = [read_result(p.parent) for p in sorted(out.glob("*/result.json"))]
    for r in found:  # one W&B run per job
        assert len(list(Path(r["output_dir"], "wandb").glob("offline-run-*"))) == 1
    return found


def test_presets_extend_the_plugin_configs() -> None:
    slurm = compose(["hydra/launcher=slurm"], return_hydra_config=True).hydra
    assert slurm.launcher._target_.endswith("SlurmLauncher")
    assert (slurm.launcher.max_num_timeout, slurm.launcher.signal_delay_s) == (10, 300)
    assert slurm.launcher.qos is None  # a plugin field we do not set
    parallel = compose(["hydra/launcher=parallel"], return_hydra_config=True).hydra
    assert parallel.launcher.n_jobs == 2 and parallel.launcher.prefer == "processes"
    assert parallel.job.env_set.WANDB_START_METHOD == "thread"
    assert compose(["hydra/launcher=slurm_local"], return_hydra_config=True).hydra.launcher.tasks_per_node == 1


def test_parallel_joblib_sweep(tmp_path: Path, tiny: Callable[..., list[str]]) -> None:
    found = results(sweep(tmp_path, tiny, "hydra/launcher=parallel", "train.seed=0,1", "data.num_workers=1"))
    assert [r["status"] for r in found] == ["finished", "finished"]


def test_slurm_local_sweep_of_two_task_ddp_jobs(tmp_path: Path, tiny: Callable[..., list[str]]) -> None:
    # also the SLURM multi-GPU recipe on CPU: each job runs 2 tasks → 2 gloo ranks from submitit's environment
    found = results(sweep(tmp_path, tiny, "hydra/launcher=slurm_local", "train.seed=0,1",
                          "hydra.launcher.tasks_per_node=2", "train.device=cpu", "train.batch_size=2"))
    assert [(r["status"], r["world_size"], r["effective_batch_size"]) for r in found] == [("finished", 2, 4)] * 2


class SignalDuring(torch.nn.Module):
    """The real criterion, sending this process SIGUSR2 during training step ``step``."""

    def __init__(self, inner: torch.nn.Module, step: int) -> None:
        super().__init__()
        self.inner, self.step, self.calls = inner, step, 0

    def forward(self, *args: Any) -> dict:
        self.calls += 1
        if self.calls == self.step:
            os.kill(os.getpid(), signal.SIGUSR2)
        return self.inner(*args)


def test_sigusr2_checkpoints_then_hands_over_to_submitit(tmp_path: Path, tiny_cfg: Callable[..., DictConfig],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def submitit_requeue(signum: int, frame: object) -> None:  # what submitit does on rank 0: requeue, exit
        calls.append(signum)
        raise SystemExit(-1)

    real = job_mod.build_criterion

    def build(*args: Any, **kwargs: Any) -> torch.nn.Module:
        return SignalDuring(real(*args, **kwargs), step=2)

    monkeypatch.setattr(job_mod, "build_criterion", build)
    out, cfg = tmp_path / "job", tiny_cfg()
    previous = signal.signal(signal.SIGUSR2, submitit_requeue)
    try:
        with pytest.raises(SystemExit):
            run_job(cfg, out)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert calls == [signal.SIGUSR2]
    assert checkpoint_step(out / "checkpoint.pt") == 2 and read_result(out)["status"] == "interrupted"

    monkeypatch.setattr(job_mod, "build_criterion", real)
    again = run_job(cfg, out)  # the requeued job
    assert (again["status"], again["resumed_from"]) == ("finished", 2)
