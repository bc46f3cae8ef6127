"""Experiment-logger adapter: one W&B run per Hydra job, or nothing.

Callers name metrics with slashes (``train/loss``, ``val/AP``) and always call ``finish`` (with
``exit_code=1`` on failure: W&B would otherwise show a crashed Hydra job as "finished", wandb#4591).
The class also works as a context manager that does exactly that. Every row carries ``step`` (the training
step), the x-axis of all ``train/*`` and ``val/*`` charts; ``val/AP`` and ``val/AP50`` keep their best value.
Media (image panels with boxes, tables, the checkpoint artifact) are built here, so only this module imports
wandb; ``NullLogger.wants_media`` is False so callers skip the work of preparing them.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ablate.registry import Choice
from ablate.runs.atomic import atomic_write_text

if TYPE_CHECKING:
    import pandas

    from ablate.runs.panel import BoxPanel

log = logging.getLogger(__name__)



class LoggerName(Choice):
    wandb = "wandb"
    none = "none"


class WandbMode(Choice):
    offline = "offline"
    online = "online"
    disabled = "disabled"



@dataclass
class LoggerConfig:
    """Hydra structured config for the ``logger`` group (``conf/logger/*.yaml``)."""

    name: LoggerName = LoggerName.wandb
    mode: WandbMode = WandbMode.offline
    project: str = "ablate"
    entity: str | None = None
    group: str | None = None  # None: the sweep folder's name, passed by the caller
    tags: list[str] = field(default_factory=list)
    log_checkpoint: bool = False  # upload the final checkpoint as a W&B Artifact (type "model")


STEP = "step"  # the x-axis key of every row
BEST = ("val/AP", "val/AP50")  # summaries keep the best (max) and the last value of these


@runtime_checkable
class Logger(Protocol):
    wants_media: bool

    def log(self, metrics: dict, step: int) -> None: ...
    def summary(self, values: dict) -> None: ...
    def log_image(self, key: str, path: str | Path, step: int | None = None) -> None: ...
    def log_table(self, key: str, df: pandas.DataFrame, step: int | None = None) -> None: ...
    def log_boxes(self, key: str, panels: list[BoxPanel], class_labels: dict[int, str], step: int) -> None: ...
    def log_checkpoint(self, path: Path, result: dict) -> None: ...
    def finish(self, exit_code: int = 0) -> None: ...
    def info(self) -> dict: ...


class _FinishOnExit:
    """``with build_logger(...) as lg:`` finishes the run, marking it failed if an exception escapes."""

    def finish(self, exit_code: int = 0) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


class NullLogger(_FinishOnExit):
    """``logger=none``: does nothing and never imports wandb."""

    wants_media = False

    def log(self, metrics: dict, step: int) -> None:
        pass

    def summary(self, values: dict) -> None:
        pass

    def log_image(self, key: str, path: str | Path, step: int | None = None) -> None:
        pass

    def log_table(self, key: str, df: pandas.DataFrame, step: int | None = None) -> None:
        pass

    def log_boxes(self, key: str, panels: list[BoxPanel], class_labels: dict[int, str], step: int) -> None:
        pass

    def log_checkpoint(self, path: Path, result: dict) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass

    def info(self) -> dict:
        return {"mode": "disabled", "id": None, "dir": None}


class WandbLogger(_FinishOnExit):
    """One W&B run in ``output_dir/wandb``; its id lives in ``output_dir/wandb_id.txt`` for resumption."""

    def __init__(
        self,
        output_dir: Path,
        *,
        mode: str,
        project: str,
        entity: str | None,
        group: str | None,
        name: str,
        job_type: str,
        tags: list[str],
        config: dict,
        log_checkpoint: bool = False,
    ) -> None:
        import wandb

        self._wandb = wandb
        self.mode = mode
        self.wants_media = mode != "disabled"
        self.log_checkpoints = log_checkpoint
        self.output_dir = Path(output_dir).absolute()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        run_id = None if mode == "disabled" else _persistent_run_id(self.output_dir / "wandb_id.txt")
        self.run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            job_type=job_type,
            name=name,
            tags=list(tags),
            config=config,
            dir=str(self.output_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,
            settings=_wandb_settings(wandb),
        )
        self._finished = False
        self.run.define_metric(STEP, hidden=True)
        for pattern in ("train/*", "val/*"):
            self.run.define_metric(pattern, step_metric=STEP)
        for key in BEST:
            self.run.define_metric(key, step_metric=STEP, summary="max,last")

    def log(self, metrics: dict, step: int) -> None:
        # W&B drops (with a warning) rows whose step is below the run's current step; rows logged at the
        # same step are merged into one.
        self.run.log({**metrics, STEP: int(step)}, step=int(step))

    def summary(self, values: dict) -> None:
        self.run.summary.update(dict(values))

    def log_image(self, key: str, path: str | Path, step: int | None = None) -> None:
        from PIL import Image

        with Image.open(path) as picture:  # read now: the file may be a temporary one
            self._log_media({key: self._wandb.Image(picture.convert("RGB"))}, step)

    def log_table(self, key: str, df: pandas.DataFrame, step: int | None = None) -> None:
        self._log_media({key: self._wandb.Table(dataframe=df)}, step)

    def _log_media(self, row: dict, step: int | None) -> None:
        if step is not None:
            self.log(row, step=step)
        else:
            # commit=False: attach to the current step; a committing log() would advance W&B's step and
            # make the next log(step=...) look like it went backwards (and be dropped).
            self.run.log(row, commit=False)

    def log_boxes(self, key: str, panels: list[BoxPanel], class_labels: dict[int, str], step: int) -> None:
        """One ``wandb.Image`` per panel, with its ground-truth and predicted boxes as two toggleable layers."""
        labels = {int(k): str(v) for k, v in class_labels.items()}
        images = [self._wandb.Image(p.image, caption=p.caption, boxes={
            "ground_truth": {"box_data": p.gt_boxes, "class_labels": labels},
            "predictions": {"box_data": p.pred_boxes, "class_labels": labels}}) for p in panels]
        self.log({key: images}, step=step)

    def log_checkpoint(self, path: Path, result: dict) -> None:
        """With ``logger.log_checkpoint=true``: the job's final checkpoint as artifact ``model-<run id>`` (type
        ``model``, aliases ``latest`` and ``step-N``), its variant, step and metrics in the metadata;
        ``model.init_from=wandb:ENTITY/PROJECT/model-<run id>:latest`` starts from it."""
        if not self.log_checkpoints or self.mode == "disabled":
            return
        step = int(result.get("steps") or 0)
        metadata = {"variant": result.get("variant"), "axes": result.get("axes"), "seed": result.get("seed"),
                    "step": step, "run_key": result.get("run_key"), **(result.get("metrics") or {})}
        artifact = self._wandb.Artifact(f"model-{self.run.id}", type="model", metadata=metadata,
                                        description=f"ablate checkpoint: {result.get('variant')}, step {step}")
        artifact.add_file(str(path), name=Path(path).name)
        self.run.log_artifact(artifact, aliases=["latest", f"step-{step}"])

    def finish(self, exit_code: int = 0) -> None:
        """Finish the run; a non-zero ``exit_code`` marks it failed. Safe to call twice."""
        if self._finished:
            return
        self._finished = True
        self.run.finish(exit_code=exit_code)
        # wandb 0.31's finish() returns before wandb-core has written the run's records: the
        # offline-run-*/run-*.wandb file can still be a 7-byte header for ~10 ms, so a job killed or
        # synced right after would lose the run. Shutting the service down waits for the flush
        # (cost: the next init in this process restarts wandb-core, well under a second).
        try:
            self._wandb.teardown()
        except Exception as e:  # never let logging teardown fail a finished job
            log.warning("wandb teardown failed: %s", e)

    def info(self) -> dict:
        """Where the run is: ``url`` online (None offline), ``dir`` its local folder."""
        if self.mode == "disabled":
            return {"mode": "disabled", "id": None, "dir": None}
        url = self.run.url if self.mode == "online" else None
        return {"mode": self.mode, "id": self.run.id, "dir": str(self.output_dir / "wandb"), "url": url,
                "project": self.run.project, "entity": self.run.entity or None, "group": self.run.group or None}


def build_logger(
    cfg: LoggerConfig | Any,
    output_dir: Path,
    *,
    config: dict,
    name: str,
    group: str | None,
    job_type: str = "train",
    tags: list[str] | tuple[str, ...] = (),
) -> Logger:
    """Build the job's logger from the ``logger`` config group.

    Args:
        cfg: a ``LoggerConfig`` or the equivalent ``DictConfig`` node.
        output_dir: the job's folder; W&B writes ``output_dir/wandb/``.
        config: flat dict logged as the run config (put the ablation axes here: W&B can group by
            config keys but not by tags). A DictConfig is converted (W&B would not unpack it).
        name: run name (the override string).
        group: default group (the sweep folder's name); ``cfg.group`` wins when set.
        job_type: ``train`` | ``eval`` | ``report``.
        tags: added to ``cfg.tags`` (e.g. ``axis_tags(axes)``).
    """
    logger_name, mode = LoggerName(cfg.name), WandbMode(cfg.mode)  # the schema has checked both
    if logger_name is LoggerName.none:
        return NullLogger()
    return WandbLogger(
        Path(output_dir),
        mode=str(mode),
        project=str(cfg.project),
        entity=cfg.entity,
        group=cfg.group or group,
        name=name,
        job_type=job_type,
        tags=list(dict.fromkeys([*(str(t) for t in (cfg.tags or [])), *tags])),
        config=_plain_config(config),
        log_checkpoint=bool(getattr(cfg, "log_checkpoint", False)),
    )


def axis_tags(axes: dict[str, Any]) -> list[str]:
    """``csq=full``, ``proj=diagonal``, … : the ablation axes as W&B tags (filters; grouping uses the config)."""
    return [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in axes.items()]


def _persistent_run_id(id_file: Path) -> str:
    """The run id stored for this job folder, created on first use, so a requeued job resumes its run."""
    try:
        run_id = id_file.read_text().strip()
    except FileNotFoundError:
        run_id = ""
    if re.fullmatch(r"[A-Za-z0-9_-]+", run_id):
        return run_id
    # Our own generator: wandb moved its helper (wandb.util.generate_id is gone in 0.31).
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    atomic_write_text(id_file, run_id + "\n")  # before init: a crash during init keeps the id
    return run_id


def _wandb_settings(wandb: Any) -> Any:
    """Quiet, thread-only W&B settings, keeping only the fields this wandb version knows.

    The console is captured (the run's ``output.log``); system metrics are sampled only where there is a GPU
    to watch (on CPU they would add a sampler process and say little), or as ``WANDB_X_DISABLE_STATS`` says.

    Settings forbid unknown fields, and names move between versions: ``start_method`` (needed with
    joblib/loky launchers on old wandb) no longer exists in 0.31, where passing it raises.
    """
    wanted: dict[str, Any] = {
        "start_method": "thread",
        "console": "wrap",
        "silent": True,
        # The default ("return_previous") hands a new job the previous job's unfinished run in a
        # sequential multirun; finishing it is the lesser evil.
        "reinit": "finish_previous" if _version(wandb.__version__) >= (0, 19, 10) else True,
    }
    if "WANDB_X_DISABLE_STATS" not in os.environ:  # an explicit setting would override the user's variable
        wanted["x_disable_stats"] = not _gpu_present()
    fields = getattr(type(wandb.Settings()), "model_fields", None)
    if fields is not None:
        wanted = {k: v for k, v in wanted.items() if k in fields}
        return wandb.Settings(**wanted)
    settings = {}
    for key, value in wanted.items():  # pre-pydantic wandb: try one by one
        try:
            wandb.Settings(**{key: value})
            settings[key] = value
        except Exception:
            log.debug("wandb %s has no setting %r", wandb.__version__, key)
    return wandb.Settings(**settings)


def _gpu_present() -> bool:
    import torch  # WandbLogger only: logger=none never imports torch

    return torch.cuda.is_available()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _plain_config(config: Any) -> dict:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return OmegaConf.to_container(config, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except ImportError:
        pass
    return dict(config)
