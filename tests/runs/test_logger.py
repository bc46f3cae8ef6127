"""Logger adapter: a real offline W&B run (no network), id reuse, failure marking, NullLogger."""

from __future__ import annotations

import json
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
    assert info == {"mode": "offline", "id": run_id, "dir": str(out / "wandb"), "url": None, "project": "ablate",
                    "entity": None, "group": "sweep_2026"}
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


def test_settings_capture_the_console_and_sample_system_metrics_only_on_gpus(monkeypatch):
    import torch
    import wandb

    monkeypatch.delenv("WANDB_X_DISABLE_STATS", raising=False)
    settings = logger_mod._wandb_settings(wandb)
    assert settings.console == "wrap"
    assert settings.x_disable_stats is (not torch.cuda.is_available())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert logger_mod._wandb_settings(wandb).x_disable_stats is False
    # the user's variable wins over our default: we leave the field unset, so wandb.init reads the variable
    monkeypatch.setenv("WANDB_X_DISABLE_STATS", "true")
    assert "x_disable_stats" not in logger_mod._wandb_settings(wandb).model_fields_set


def test_null_logger_never_imports_wandb(tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ablate.runs import LoggerConfig, build_logger, RunFiles\n"
        f"lg = build_logger(LoggerConfig(name='none'), Path({str(tmp_path)!r}), config={{'a': 1}}, name='n', group='g')\n"
        "lg.log({'train/loss': 1.0}, step=1); lg.summary({'x': 1}); lg.log_image('k', 'p'); lg.finish(1)\n"
        "lg.log_boxes('k', [], {}, 1); lg.log_checkpoint(Path('c.pt'), {}); assert not lg.wants_media\n"
        "assert lg.info()['id'] is None\n"
        "assert 'wandb' not in sys.modules, 'wandb imported'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    src = str(Path(logger_mod.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(NullLogger(), Logger)


def _panel(seed: int):
    import numpy as np

    from ablate.runs.panel import BoxPanel

    box = {"position": {"minX": 0.1, "minY": 0.2, "maxX": 0.5, "maxY": 0.6}, "class_id": 1, "box_caption": "rectangle"}
    pred = {**box, "class_id": 2, "box_caption": "ellipse 0.70", "scores": {"score": 0.7}}
    image = np.random.default_rng(seed).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    return BoxPanel(image=image, gt_boxes=[box], pred_boxes=[pred], caption=f"image {seed}")


@pytest.mark.parametrize("log_checkpoint", [True, False])
def test_offline_run_reads_back_with_media_summaries_and_artifact(tmp_path, wandb_env, log_checkpoint):
    """Everything a dashboard shows, decoded from the offline run's own .wandb file."""
    from tests.runs.wandb_records import run_file, summarize

    cfg = OmegaConf.merge(OmegaConf.structured(LoggerConfig), OmegaConf.load(CONF / "wandb.yaml"))
    assert cfg.log_checkpoint is False  # off by default
    cfg.log_checkpoint, cfg.tags = log_checkpoint, ["smoke"]
    out = tmp_path / "job"
    lg = build_logger(cfg, out, config={"csq": "T", "proj": "scalar"}, name="n", group="g", job_type="eval",
                      tags=logger_mod.axis_tags({"csq": "T", "proj": "scalar", "focal": True}))
    assert lg.wants_media
    lg.log({"train/loss": 2.0}, step=5)
    lg.log({"val/AP": 0.30, "val/AP50": 0.50}, step=10)
    lg.log_boxes("val/predictions", [_panel(0), _panel(1)], {1: "rectangle", 2: "ellipse"}, step=10)
    lg.log_table("val/per_class_AP", pd.DataFrame([{"id": 1, "name": "rectangle", "AP": 0.3, "AP50": None}]), step=10)
    lg.log({"val/AP": 0.20, "val/AP50": 0.60}, step=20)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "att.png")
    lg.log_image("val/attention", tmp_path / "att.png", step=20)
    (tmp_path / "checkpoint.pt").write_bytes(b"weights")
    lg.log_checkpoint(tmp_path / "checkpoint.pt", {"steps": 20, "variant": "csq=T proj=scalar", "seed": 3,
                                                  "metrics": {"AP": 0.2, "AP50": 0.6}})
    lg.summary({"final/AP": 0.2})
    run_id = lg.info()["id"]
    lg.finish()

    run = summarize(run_file(out))
    assert run["run"].job_type == "eval" and run["run"].run_group == "g" and run["exit_code"] == 0
    assert list(run["run"].tags) == ["smoke", "csq=T", "proj=scalar", "focal=true"]
    assert run["config"]["csq"] == "T"
    # the step is every chart's x-axis; val/AP and val/AP50 keep their best and last values
    assert run["metrics"]["train/*"].step_metric == "step" and run["metrics"]["val/*"].step_metric == "step"
    assert run["metrics"]["val/AP"].summary.max and run["metrics"]["val/AP"].summary.last
    assert run["summary"]["val/AP"] == {"max": 0.30, "last": 0.20}
    assert run["summary"]["val/AP50"] == {"max": 0.60, "last": 0.60}
    assert run["summary"]["final/AP"] == 0.2
    assert [r["step"] for r in run["history"]] == [5, 10, 20]
    row10 = run["history"][1]
    assert row10["val/predictions/_type"] == "images/separated" and row10["val/predictions/count"] == 2
    boxes = row10["val/predictions/all_boxes"]
    assert len(boxes) == 2 and set(boxes[0]) == {"ground_truth", "predictions"}
    box_file = next(out.glob("wandb/offline-run-*/files")) / boxes[0]["predictions"]["path"]
    saved = json.loads(box_file.read_text())
    assert saved["class_labels"] == {"1": "rectangle", "2": "ellipse"}
    assert saved["box_data"][0]["scores"] == {"score": 0.7} and saved["box_data"][0]["class_id"] == 2
    assert row10["val/per_class_AP/_type"] == "table-file" and row10["val/per_class_AP/nrows"] == 1
    assert run["history"][2]["val/attention/_type"] == "image-file"
    models = [a for a in run["artifacts"] if a.type == "model"]
    if not log_checkpoint:
        assert models == []
        return
    assert len(models) == 1 and models[0].name == f"model-{run_id}"
    assert set(models[0].aliases) == {"latest", "step-20"}
    meta = json.loads(models[0].metadata)
    assert meta["variant"] == "csq=T proj=scalar" and meta["step"] == 20 and meta["AP"] == 0.2 and meta["seed"] == 3
    assert [c.path for c in models[0].manifest.contents] == ["checkpoint.pt"]
