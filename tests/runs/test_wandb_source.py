"""``model.init_from=wandb:ENTITY/PROJECT/NAME:VERSION``: parsing, and clear errors offline or without a login."""

from __future__ import annotations

import pytest

from ablate.config import ConfigError
from ablate.runs.wandb_source import checkpoint_in, is_wandb_source, parse_wandb_source, resolve_wandb_source


def test_parse():
    assert parse_wandb_source("wandb:me/ablate/model-1a2b3c4d:v3") == "me/ablate/model-1a2b3c4d:v3"
    assert parse_wandb_source("wandb:me/ablate/model-1a2b3c4d") == "me/ablate/model-1a2b3c4d:latest"
    assert is_wandb_source("wandb:me/p/n") and not is_wandb_source("/ckpt/wandb:x.pt") and not is_wandb_source(None)
    for bad in ("wandb:me/model", "wandb:me/p/n:v1:v2", "wandb:/p/n", "wandb:me/p/n/extra"):
        with pytest.raises(ConfigError, match="not wandb:ENTITY/PROJECT/NAME:VERSION"):
            parse_wandb_source(bad)


def test_offline_is_a_config_error_that_says_what_to_do(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(ConfigError, match=r"this run is offline \(logger.mode\).*wandb artifact get me/p/n:latest"):
        resolve_wandb_source("wandb:me/p/n", mode="offline")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(ConfigError, match=r"this run is disabled \(WANDB_MODE\)"):
        resolve_wandb_source("wandb:me/p/n", mode="online")


def test_online_without_a_login_names_the_problem(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))  # no stored login
    monkeypatch.setenv("WANDB_API_KEY_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    with pytest.raises(ConfigError, match=r"cannot fetch me/p/n:latest from W&B: UsageError"):
        resolve_wandb_source("wandb:me/p/n", mode="online")


def test_checkpoint_in_a_downloaded_artifact(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "weights.pth").write_bytes(b"x")
    assert checkpoint_in(tmp_path / "a", "s") == tmp_path / "a" / "weights.pth"
    (tmp_path / "a" / "checkpoint.pt").write_bytes(b"x")
    assert checkpoint_in(tmp_path / "a", "s") == tmp_path / "a" / "checkpoint.pt"
    (tmp_path / "b").mkdir()
    with pytest.raises(ConfigError, match="holds 0 checkpoint files"):
        checkpoint_in(tmp_path / "b", "s")
