"""``model.init_from=wandb:ENTITY/PROJECT/NAME:VERSION``: a checkpoint artifact logged by an earlier run
(``logger.log_checkpoint=true``), fetched through the W&B API into the local artifact cache.

Needs W&B online; offline it stops with a config error saying how to get the file instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PREFIX = "wandb:"
_SPEC = re.compile(r"wandb:(?P<entity>[\w.-]+)/(?P<project>[\w.-]+)/(?P<name>[\w.-]+)(?::(?P<version>[\w.-]+))?")


def is_wandb_source(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def parse_wandb_source(spec: str) -> str:
    """``wandb:ENTITY/PROJECT/NAME[:VERSION]`` -> ``ENTITY/PROJECT/NAME:VERSION`` (VERSION defaults to latest)."""
    from ablate.config import ConfigError

    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise ConfigError(f"model.init_from={spec!r} is not wandb:ENTITY/PROJECT/NAME:VERSION "
                          "(e.g. wandb:me/ablate/model-1a2b3c4d:latest)")
    return f"{match['entity']}/{match['project']}/{match['name']}:{match['version'] or 'latest'}"


def resolve_wandb_source(spec: str, *, mode: str = "online", root: Path | None = None) -> Path:
    """The local checkpoint file of a W&B model artifact, downloaded (or found in W&B's cache).

    Args:
        spec: ``wandb:ENTITY/PROJECT/NAME:VERSION``.
        mode: the run's ``logger.mode``; ``offline``/``disabled`` (or ``WANDB_MODE`` saying so) cannot fetch.
        root: download folder (default: W&B's artifact folder, ``WANDB_ARTIFACT_DIR``).

    Raises:
        ConfigError: a malformed spec, W&B offline, not logged in, or no such artifact (the message says which).
    """
    from ablate.config import ConfigError

    name = parse_wandb_source(spec)
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    offline = next((m for m in (mode, env_mode) if m in ("offline", "disabled", "dryrun")), None)
    if offline:
        raise ConfigError(
            f"model.init_from={spec}: fetching a W&B artifact needs W&B online, and this run is {offline} "
            f"({'WANDB_MODE' if offline == env_mode else 'logger.mode'}); use logger.mode=online after `wandb login`, "
            f"or download it where you are online (`wandb artifact get {name}`) and pass the file: "
            "model.init_from=/path/to/checkpoint.pt")
    import wandb

    try:
        artifact = wandb.Api(timeout=60).artifact(name, type="model")
        folder = Path(artifact.download(root=str(root) if root is not None else None))
    except Exception as e:  # noqa: BLE001 - wandb raises UsageError, CommError, ValueError … for these
        raise ConfigError(f"model.init_from={spec}: cannot fetch {name} from W&B: {type(e).__name__}: {e}") from e
    return checkpoint_in(folder, spec)


def checkpoint_in(folder: Path, spec: str) -> Path:
    """The checkpoint file of a downloaded artifact: ``checkpoint.pt``, else its only ``*.pt``/``*.pth``."""
    from ablate.config import ConfigError

    if (folder / "checkpoint.pt").is_file():
        return folder / "checkpoint.pt"
    found = sorted(p for p in folder.rglob("*") if p.suffix in (".pt", ".pth") and p.is_file())
    if len(found) != 1:
        raise ConfigError(f"model.init_from={spec}: the artifact holds {len(found)} checkpoint files "
                          f"({', '.join(p.name for p in found[:5]) or 'none'}); expected one")
    return found[0]
