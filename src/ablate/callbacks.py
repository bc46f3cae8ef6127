"""Hydra callbacks: write the sweep's report when a multirun ends (on the launching machine)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SweepReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            from ablate.report import write_report

            out = write_report([sweep_dir], sweep_dir / "report")
            log.info("sweep report: %s", out / "index.md")
        except Exception as e:  # a report problem must not hide the jobs' own results
            log.error("could not write the sweep report for %s: %s", sweep_dir, e)
