"""``python -m ablate [overrides]`` (``-m`` for a multirun sweep): the Hydra entry point."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ablate.config import ConfigError, config_dir, register_schema, validate

log = logging.getLogger("ablate")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def app(cfg: DictConfig) -> float | None:
    from ablate.app import run_job

    validate(cfg)
    hc = HydraConfig.get()
    sweep_dir = Path(hc.sweep.dir).absolute() if hc.mode == RunMode.MULTIRUN else None
    result = run_job(cfg, hc.runtime.output_dir, overrides=list(hc.overrides.task), sweep_dir=sweep_dir)
    metrics = result.get("metrics") or {}
    if result["status"] == "finished":
        log.info("AP %.3f  AP50 %.3f  AP75 %.3f  (%d steps, %.0f s)", metrics.get("AP", float("nan")),
                 metrics.get("AP50", float("nan")), metrics.get("AP75", float("nan")), result["steps"],
                 result["wall_time_s"] or 0)
        log.info("results: %s/result.json", result["output_dir"])
        if result.get("wandb") and result["wandb"].get("dir"):
            log.info("W&B %s run: %s (sync later with `wandb sync %s/wandb/offline-run-*`)",
                     result["wandb"].get("mode"), result["wandb"]["dir"], result["output_dir"])
    return metrics.get("AP")


def main() -> None:
    register_schema()
    try:
        app()
    except ConfigError as e:  # raised before any training: say what is wrong, exit non-zero
        print(f"ablate: config error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
