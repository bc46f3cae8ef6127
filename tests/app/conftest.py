"""Tiny jobs (a ~55k-parameter model on 20 synthetic images) for the reliability tests, in process and as a CLI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from ablate.config import compose

# One thread: CPU results are then bit-identical from run to run, which the resume tests compare.
TINY = [
    "logger=none", "train.max_steps=6", "train.batch_size=4", "eval.batch_size=8", "train.num_threads=1",
    "data.shapes.num_train=20", "data.shapes.num_val=8", "model.backbone.widths=[8,16]", "model.hidden_dim=32",
    "model.dim_feedforward=64", "model.enc_layers=1", "model.dec_layers=2", "train.warmup_steps=2",
]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One shapes cache for every test (generated on first use)."""
    return tmp_path_factory.mktemp("shapes_cache")


@pytest.fixture
def tiny(data_root: Path) -> Callable[..., list[str]]:
    """``tiny("train.lr=1")``: the tiny overrides plus extras (later ones win)."""
    return lambda *extra: [*TINY, f"data.root={data_root}", *extra]


@pytest.fixture
def tiny_cfg(tiny: Callable[..., list[str]]) -> Callable[..., DictConfig]:
    return lambda *extra: compose(tiny(*extra))


@pytest.fixture
def cli(tiny: Callable[..., list[str]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., tuple[int, str]]]:
    """``python -m ablate`` in this process (fast): returns (exit status, stderr)."""
    from ablate.__main__ import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(*args: str) -> tuple[int, str]:
        # Hydra's own logging setup would leave handlers behind on the root logger
        monkeypatch.setattr(sys, "argv", ["ablate", *tiny(*args), "hydra/job_logging=none",
                                          "hydra/hydra_logging=none"])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
        return code, capsys.readouterr().err

    yield run
    root.handlers[:], root.level = handlers, level


def ablate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ablate", *args]


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m ablate`` in a subprocess, where the process itself (exit status, signals) is the point."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(ablate_cmd(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def read_result(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "result.json").read_text())


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


class ExplodingCriterion(torch.nn.Module):
    """The real criterion, raising ``RuntimeError("boom")`` on its call number ``at`` (= that training step)."""

    def __init__(self, inner: torch.nn.Module, at: int) -> None:
        super().__init__()
        self.inner, self.at, self.calls = inner, at, 0

    def forward(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        self.calls += 1
        if self.calls > self.at:
            raise RuntimeError("boom")
        return self.inner(outputs, targets, num_boxes)


@pytest.fixture
def explode_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[int | None], None]:
    """``explode_at(3)``: later runs crash at training step 3 (a fault injected from outside, for tests only);
    ``explode_at(None)`` disarms it."""
    import ablate.job as job_mod

    real = job_mod.build_criterion
    armed: dict[str, int | None] = {"at": None}

    def build(*args: Any, **kwargs: Any) -> torch.nn.Module:
        criterion = real(*args, **kwargs)
        return criterion if armed["at"] is None else ExplodingCriterion(criterion, armed["at"])

    monkeypatch.setattr(job_mod, "build_criterion", build)
    return lambda step: armed.update(at=step)
