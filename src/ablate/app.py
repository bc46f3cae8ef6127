"""One job: skip if finished, record duplicates, train (or evaluate), and write the run files.

Called by ``python -m ablate`` for a single run and for every job of a multirun. Whatever happens inside,
``result.json`` ends as ``finished``, ``duplicate`` or ``failed`` (with the error, step and traceback).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import random
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ablate.config import ConfigError, config_key, effective_config, model_axes, validate, variant_label
from ablate.engine.checkpoint import CheckpointMismatch, check_compatible, load_checkpoint
from ablate.engine.devices import device_problem
from ablate.engine.distributed import broadcast_object, cleanup, export_submitit_env, init_distributed
from ablate.engine.train import Diverged, Preempted, resolve_device, train
from ablate.models.builder import build_model, count_parameters
from ablate.runs.files import RunFiles, git_commit, utc_now
from ablate.runs.logger import NullLogger, build_logger

log = logging.getLogger(__name__)
DONE = ("finished", "duplicate")


def claim(sweep_dir: Path, run_key: str, output_dir: Path) -> Path:
    """First job of a sweep to claim ``run_key`` trains it; later ones get the owner's folder back.

    ``O_CREAT | O_EXCL`` makes the claim atomic across processes of a parallel launcher sharing the folder.
    """
    keys = sweep_dir / ".claims"
    keys.mkdir(parents=True, exist_ok=True)
    path = keys / run_key
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        for _ in range(50):  # the owner may be between creating and writing the file
            owner = path.read_text().strip()
            if owner:
                return Path(owner)
            time.sleep(0.1)
        return output_dir
    with os.fdopen(fd, "w") as fh:
        fh.write(str(output_dir))
    return output_dir


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """Dotted keys (``train.lr``) for W&B, so the dashboard filters and groups by them."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            out[prefix] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def error_record(e: BaseException) -> dict[str, Any]:
    """result.json's ``error``: message, type, the training step it happened at (if any) and the traceback."""
    step = e.step if isinstance(e, Diverged) else getattr(e, "train_step", None)
    return {"message": str(e) or type(e).__name__, "type": type(e).__name__, "step": step,
            "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__))}


@contextlib.contextmanager
def job_lock(output_dir: Path) -> Iterator[None]:
    """Hold an advisory lock on the job folder while the job runs, so a second process (a relaunch while the
    first still runs, a sweep reaching a job started by hand) stops instead of training into the same files.
    The kernel drops the lock when its holder dies, even by SIGKILL. Under torchrun rank 0 holds it for all."""
    export_submitit_env()  # a multi-task submitit job learns its ranks from SLURM's variables
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    with open(output_dir / ".lock", "a") as fh:  # "a": opening never changes a finished job's files
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OSError(errno.EBUSY, f"{output_dir} is being run by another process right now; "
                                       "not starting a second copy into the same folder") from None
        yield


def run_job(cfg: DictConfig, output_dir: str | Path, *, overrides: list[str] | None = None,
            sweep_dir: Path | None = None) -> dict[str, Any]:
    """Run one job into ``output_dir`` and return its result dict. Raises after recording a failure."""
    files = RunFiles(output_dir)
    try:
        files.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"cannot create the output folder {files.output_dir}: {e.strerror}") from e
    previous = files.read_result()
    if previous and previous.get("status") in DONE:  # checked again under the lock; this path touches nothing
        return _run_job(cfg, files, overrides=overrides, sweep_dir=sweep_dir)
    with job_lock(files.output_dir):
        return _run_job(cfg, files, overrides=overrides, sweep_dir=sweep_dir)


def _run_job(cfg: DictConfig, files: RunFiles, *, overrides: list[str] | None, sweep_dir: Path | None
             ) -> dict[str, Any]:
    previous = files.read_result()
    if previous and previous.get("status") in DONE:
        log.info("%s is already %s; not re-running it", files.output_dir, previous["status"])
        with contextlib.suppress(Exception):  # an invalid config cannot be keyed; it is not run either way
            if previous.get("run_key") not in (None, config_key(cfg)):
                log.warning("%s was %s with another config than this one; use a new output folder to train it",
                            files.output_dir, previous["status"])
        return previous
    try:
        validate(cfg)
        if (problem := device_problem(cfg.train.device)) is not None:  # here: on the machine that runs the job
            raise ConfigError(problem)
    except ConfigError as e:
        # recorded, so a multirun's report lists the job as failed with the reason, not as missing
        log.error("job failed: %s (%s)", e, files.result)
        described: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # an axis name the registries do not know
            described = {"axes": (axes := model_axes(cfg)), "variant": variant_label(axes), "seed": cfg.train.seed}
        files.write_result({"status": "failed", **described, "error": error_record(e),
                            "overrides": list(overrides or []), "output_dir": str(files.output_dir),
                            "finished_at": utc_now()})
        raise

    axes = model_axes(cfg)
    effective = effective_config(cfg)
    result: dict[str, Any] = {
        "status": "running", "axes": axes, "variant": variant_label(axes),
        "config_key": config_key(cfg, with_seed=False), "run_key": config_key(cfg), "seed": int(cfg.train.seed),
        "duplicate_of": None, "metrics": {}, "params": {}, "steps": 0, "wall_time_s": None, "world_size": 1,
        "effective_batch_size": int(cfg.train.batch_size), "resumed_from": None, "error": None,
        "overrides": list(overrides or []), "output_dir": str(files.output_dir), "git_commit": git_commit(),
        "wandb": None, "started_at": utc_now(), "finished_at": None,
    }
    if cfg.train.resume and (saved := load_checkpoint(files, mmap=True)) is not None:
        try:
            check_compatible(saved["effective_config"], effective)
        except CheckpointMismatch as e:
            # before any training or W&B run: the checkpoints stay untouched for the config they belong to
            log.error("job failed: %s (%s)", e, files.result)
            result.update(status="failed", error=error_record(e), finished_at=utc_now())
            files.write_result(result)
            raise
        del saved
    device = resolve_device(cfg.train.device)
    d = init_distributed(device.type)
    if d.enabled and device.type == "cuda":
        # modulo: a cluster that binds one GPU per task shows each rank a single device
        device = torch.device("cuda", d.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    result["world_size"] = d.world_size
    result["effective_batch_size"] = int(cfg.train.batch_size) * d.world_size

    if sweep_dir is not None:
        # rank 0 claims; every rank takes its answer, or the ranks that would train wait for the one that left
        owner = broadcast_object(claim(sweep_dir, result["run_key"], files.output_dir) if d.is_main else None, d)
        if owner != files.output_dir:
            result.update(status="duplicate", duplicate_of=str(owner), finished_at=utc_now())
            if d.is_main:
                files.write_result(result)
            log.info("same model as %s: recorded as a duplicate, not trained again", owner)
            cleanup(d)
            return result
    if d.is_main:
        files.write_result(result)

    logger = NullLogger()
    t0 = time.perf_counter()
    try:
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        seed_everything(int(cfg.train.seed) + d.rank)
        from ablate.data import build_datasets, check_num_classes

        train_ds, val_ds = build_datasets(cfg.data, max_resolution=cfg.model.max_resolution)
        check_num_classes(cfg.model.num_classes, train_ds)
        try:
            model = build_model(cfg, num_classes=train_ds.num_classes)
        except (ValueError, RuntimeError) as e:  # sizes or weights the architecture cannot take
            raise ConfigError(f"cannot build the model for this config: {e}") from e
        model = model.to(device)
        result["params"] = count_parameters(model)
        if d.is_main:
            group = cfg.logger.group or (sweep_dir.name if sweep_dir is not None else None)
            logger = build_logger(cfg.logger, files.output_dir, config={**flat_config(cfg), **axes,
                                  "params_total": result["params"]["total"]},
                                  name=f"{cfg.name} {result['variant']} seed={cfg.train.seed}", group=group)
            result["wandb"] = logger.info()
            files.write_result(result)
        summary = train(cfg, model, files, logger, d, device, effective, datasets=(train_ds, val_ds))
        result.update(metrics={k: summary["metrics"][k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")},
                      steps=summary["steps"], resumed_from=summary["resumed_from"],
                      train_time_s=summary["train_time_s"])
        if d.is_main:
            files.write_detections(summary["detections"])
            logger.summary({f"final/{k}": v for k, v in result["metrics"].items()} | {"params": result["params"]})
        result.update(status="finished", wall_time_s=time.perf_counter() - t0, finished_at=utc_now())
        if d.is_main:
            files.write_result(result)
            logger.finish(0)
        return result
    except BaseException as e:
        preempted = isinstance(e, (Preempted, KeyboardInterrupt, SystemExit))  # SystemExit: submitit requeued it
        result.update(status="interrupted" if preempted else "failed", wall_time_s=time.perf_counter() - t0,
                      finished_at=utc_now(), error=error_record(e))
        if d.is_main:
            log.error("job %s: %s (%s)", result["status"], result["error"]["message"], files.result)
            try:  # recording the failure must not hide it (e.g. the disk is full)
                files.write_result(result)
            except OSError as write_error:
                log.error("could not record the failure in %s: %s", files.result, write_error)
            try:
                logger.finish(1)
            except Exception as finish_error:
                log.error("could not mark the W&B run failed: %s", finish_error)
        raise
    finally:
        cleanup(d)
