"""Logger adapter: a real offline W&B run (no network), id reuse, failure marking, NullLogger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

import ablate.runs.logger as logger_mod
from ablate.runs.logger import Logger, LoggerConfig, NullLogger, build_logger

CONF = Path(__file__).resolve().parents[2] / "conf" / "logger"


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Keep W&B silent, offline and out of ~/.config, ~/.cache."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")  # belt and braces: the code passes mode= explicitly
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_offline_run_resume_and_failure(tmp_path, wandb_env):
    out = tmp_path / "0_csq=full"
    cfg = OmegaConf.merge(OmegaConf.structured(LoggerConfig), OmegaConf.load(CONF / "wandb.yaml"))
    cfg.tags = ["smoke"]
    config = {"csq": "full_marker_value", "model.num_queries": 20, "seed": 0}

    lg = build_logger(cfg, out, config=config, name="csq=full", group="sweep_2026", job_type="train")
    assert isinstance(lg, Logger)
    run = lg.run
    assert dict(run.config)["csq"] == "full_marker_value" and run.config["model.num_queries"] == 20
    assert run.group == "sweep_2026" and run.job_type == "train" and list(run.tags) == ["smoke"]
    lg.log({"train/loss": 1.5, "train/lr": 1e-4}, step=10)
    lg.log({"val/AP": 0.25}, step=20)
    Image.new("RGB", (8, 8)).save(tmp_path / "img.png")
    lg.log_image("report/curve", tmp_path / "img.png")
    lg.log_table("report/table", pd.DataFrame({"variant": ["a", "b"], "AP": [0.1, 0.2]}))
    lg.summary({"val/AP": 0.25})
    info = lg.info()
    lg.finish()
    lg.finish()  # idempotent

    run_id = (out / "wandb_id.txt").read_text().strip()
    assert info == {"mode": "offline", "id": run_id, "dir": str(out / "wandb")}
    first = sorted((out / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(first) == 1
    record_file = first[0] / f"run-{run_id}.wandb"
    assert record_file.stat().st_size > 0
    # wandb 0.31 writes no files/config.yaml offline: the config lives in the binary record log.
    assert b"full_marker_value" in record_file.read_bytes()

    # A requeued job in the same folder continues the same run id, and can be marked failed.
    lg2 = build_logger(cfg, out, config=config, name="csq=full", group="sweep_2026")
    assert lg2.info()["id"] == run_id
    lg2.log({"train/loss": 1.0}, step=30)
    lg2.finish(exit_code=1)
    # Offline, each attempt is its own folder with the same id (wandb 0.31 appends "-1" when both
    # start in the same second); `wandb sync` them in order.
    assert len(list((out / "wandb").glob(f"offline-run-*-{run_id}*"))) == 2
    assert b"full_marker_value" in record_file.read_bytes()


def test_disabled_mode_writes_nothing(tmp_path, wandb_env):
    with build_logger(LoggerConfig(mode="disabled"), tmp_path, config={"a": 1}, name="n", group=None) as lg:
        lg.log({"train/loss": 1.0}, step=1)
        lg.summary({"x": 1})
        assert lg.info() == {"mode": "disabled", "id": None, "dir": None}
    assert list(tmp_path.iterdir()) == []


def test_validation():
    with pytest.raises(ValueError, match="wandb, none"):
        build_logger(LoggerConfig(name="tensorboard"), Path("."), config={}, name="n", group=None)
    with pytest.raises(ValueError, match="offline, online, disabled"):
        build_logger(LoggerConfig(mode="dryrun"), Path("."), config={}, name="n", group=None)


def test_yaml_files_match_structured_config():
    schema = OmegaConf.structured(LoggerConfig)
    for name in ("wandb", "none"):
        node = OmegaConf.load(CONF / f"{name}.yaml")
        assert set(node) == set(schema), name
        assert OmegaConf.merge(schema, node).name == name  # type-checks against the dataclass


def test_settings_drop_fields_this_wandb_lacks():
    import wandb

    settings = logger_mod._wandb_settings(wandb)
    assert settings.console == "off" and settings.x_disable_stats is True


def test_null_logger_never_imports_wandb(tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ablate.runs import LoggerConfig, build_logger, RunFiles\n"
        f"lg = build_logger(LoggerConfig(name='none'), Path({str(tmp_path)!r}), config={{'a': 1}}, name='n', group='g')\n"
        "lg.log({'train/loss': 1.0}, step=1); lg.summary({'x': 1}); lg.log_image('k', 'p'); lg.finish(1)\n"
        "assert lg.info()['id'] is None\n"
        "assert 'wandb' not in sys.modules, 'wandb imported'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    src = str(Path(logger_mod.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(NullLogger(), Logger)
