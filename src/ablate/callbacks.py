"""Hydra callbacks: write the sweep's report when a multirun ends (on the launching machine)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

_failed_jobs = 0  # failed jobs of the last multirun in this process, for the exit status


def sweep_failures() -> int:
    return _failed_jobs


def count_failed(sweep_dir: Path) -> int:
    from ablate.runs.files import RunFiles

    results = (RunFiles(p.parent).read_result() for p in sweep_dir.glob("*/result.json"))
    return sum(1 for r in results if r and r.get("status") in ("failed", "interrupted"))


class SweepReport(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _failed_jobs
        _failed_jobs = 0  # a launch in the same process as an earlier sweep (tests, notebooks) starts clean

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.on_run_start(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _failed_jobs
        sweep_dir = Path(config.hydra.sweep.dir)
        _failed_jobs = count_failed(sweep_dir)
        if int(os.environ.get("RANK", "0")) != 0:  # a sweep under torchrun: every rank ran it, rank 0 reports
            return
        try:
            from ablate.report import write_report

            out = write_report([sweep_dir], sweep_dir / "report")
            log.info("sweep report: %s", out / "index.md")
        except Exception as e:  # a report problem must not hide the jobs' own results
            log.error("could not write the sweep report for %s: %s", sweep_dir, e)
