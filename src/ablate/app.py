"""One job's life: skip if finished → lock → validate → claim or mark duplicate → build → fit (or evaluate
only) → record. Called by ``python -m ablate`` for a single run and for every job of a multirun. Whatever happens
inside, ``result.json`` ends as ``finished``, ``duplicate``, ``interrupted`` or ``failed`` (with the error, step
and traceback)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ablate.config import (
    ConfigError,
    axis_labels,
    config_key,
    effective_config,
    model_axes,
    validate,
    variant_label,
)
from ablate.engine.checkpoint import trim_metrics
from ablate.engine.distributed import Dist, broadcast_object, cleanup, export_submitit_env, init_distributed
from ablate.engine.signals import Preempted
from ablate.engine.train import Diverged, TrainState
from ablate.job import Job, build_job, resolve_device
from ablate.models.builder import count_parameters
from ablate.runs.console import banner
from ablate.runs.files import RunFiles, git_commit, utc_now
from ablate.runs.logger import axis_tags, build_logger
from ablate.runs.machine import machine

log = logging.getLogger(__name__)
DONE = ("finished", "duplicate")
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


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

    walk(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), "")
    return out


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
    if (done := finished(files, cfg)) is not None:  # checked again under the lock; this path touches nothing
        return done
    with job_lock(files.output_dir):
        if (done := finished(files, cfg)) is not None:
            return done
        validated(cfg, files, overrides)
        d = init_distributed()
        try:
            device = job_device(cfg, d)
            result = new_result(cfg, files, overrides, d)
            if sweep_dir is not None and (dup := duplicate(result, files, sweep_dir, d)) is not None:
                return dup
            if d.is_main:
                files.write_result(result)
            return execute(cfg, files, result, d, device, sweep_dir)
        finally:
            cleanup(d)


def finished(files: RunFiles, cfg: DictConfig) -> dict[str, Any] | None:
    """The job's result when it is already finished (or a duplicate): it is never run or written again."""
    previous = files.read_result()
    if not previous or previous.get("status") not in DONE:
        return None
    log.info("%s is already %s; not re-running it", files.output_dir, previous["status"])
    with contextlib.suppress(Exception):  # an invalid config cannot be keyed; it is not run either way
        if previous.get("run_key") not in (None, config_key(cfg)):
            log.warning("%s was %s with another config than this one; use a new output folder to train it",
                        files.output_dir, previous["status"])
    return previous


def validated(cfg: DictConfig, files: RunFiles, overrides: list[str] | None) -> None:
    """Validate; an impossible value is recorded (so a sweep's report lists the job as failed, not missing)."""
    try:
        validate(cfg)
        resolve_device(cfg.train.device)
    except ConfigError as e:
        log.error("job failed: %s (%s)", e, files.result)
        described: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # an axis name the registries do not know
            described = {"axes": (axes := model_axes(cfg)), "variant": variant_label(axes), "seed": cfg.train.seed}
        files.write_result({"status": "failed", **described, "error": error_record(e),
                            "overrides": list(overrides or []), "output_dir": str(files.output_dir),
                            "finished_at": utc_now()})
        raise


def job_device(cfg: DictConfig, d: Dist) -> torch.device:
    device = resolve_device(cfg.train.device)
    if d.enabled and device.type == "cuda":
        # modulo: a cluster that binds one GPU per task shows each rank a single device
        device = torch.device("cuda", d.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def new_result(cfg: DictConfig, files: RunFiles, overrides: list[str] | None, d: Dist) -> dict[str, Any]:
    axes = model_axes(cfg)
    return {
        "status": "running", "axes": axes, "variant": variant_label(axes), "labels": axis_labels(axes),
        "config_key": config_key(cfg, with_seed=False), "run_key": config_key(cfg), "seed": int(cfg.train.seed),
        "duplicate_of": None, "metrics": {}, "params": {}, "steps": 0, "wall_time_s": None,
        "world_size": d.world_size, "effective_batch_size": int(cfg.train.batch_size) * d.world_size,
        "resumed_from": None, "error": None, "overrides": list(overrides or []),
        "output_dir": str(files.output_dir), "git_commit": git_commit(), "wandb": None,
        "job_type": "eval" if cfg.eval.only else "train", "init_from": None,
        "started_at": utc_now(), "finished_at": None, "machine": machine(),
    }


def duplicate(result: dict[str, Any], files: RunFiles, sweep_dir: Path, d: Dist) -> dict[str, Any] | None:
    """Rank 0 claims the model for this sweep; every rank follows its answer. A duplicate is recorded, not run."""
    owner = broadcast_object(claim(sweep_dir, result["run_key"], files.output_dir) if d.is_main else None, d)
    if owner == files.output_dir:
        return None
    result.update(status="duplicate", duplicate_of=str(owner), finished_at=utc_now())
    if d.is_main:
        files.write_result(result)
    log.info("same model as %s: recorded as a duplicate, not trained again", owner)
    return result


def start_logger(cfg: DictConfig, job: Job, result: dict[str, Any], sweep_dir: Path | None) -> None:
    if not job.dist.is_main:
        return
    group = cfg.logger.group or (sweep_dir.name if sweep_dir is not None else None)
    job.logger = build_logger(cfg.logger, job.files.output_dir,
                              config={**flat_config(cfg), **result["axes"], "params_total": result["params"]["total"]},
                              name=f"{cfg.name} {result['variant']} seed={cfg.train.seed}", group=group,
                              job_type=result["job_type"], tags=axis_tags(result["axes"]))
    result["wandb"] = job.logger.info()
    job.files.write_result(result)
    log.info(banner(cfg, result, device=job.device, threads=torch.get_num_threads(),
                    datasets=(job.train_ds, job.val_ds)))


def execute(cfg: DictConfig, files: RunFiles, result: dict[str, Any], d: Dist, device: torch.device,
            sweep_dir: Path | None) -> dict[str, Any]:
    """Build, restore, train or evaluate, and record; a failure is recorded before it is raised."""
    t0 = time.perf_counter()
    job: Job | None = None
    try:
        job = build_job(cfg, files, d, device, effective_config(cfg))
        result.update(params=count_parameters(job.model), init_from=job.loaded)
        state = TrainState()
        job.restore(state)  # a checkpoint of another config raises here, before the W&B run exists
        if d.is_main:  # a relaunch logs again what came after its checkpoint (everything, without one)
            trim_metrics(files, state.step, {int(r["step"]) for r in state.history if r.get("kind") == "eval"})
        start_logger(cfg, job, result, sweep_dir)
        record, final, train_time = job.run(state)
        result.update(metrics={k: record[k] for k in METRICS}, per_class=final.per_class, steps=state.step,
                      resumed_from=state.resumed_from, train_time_s=train_time, status="finished",
                      wall_time_s=state.elapsed_s + time.perf_counter() - t0, finished_at=utc_now())
        if d.is_main:
            files.write_detections(final.detections)
            job.logger.summary({f"final/{k}": v for k, v in result["metrics"].items()} | {"params": result["params"]})
            if job.trainer is not None:  # an evaluation-only job has no checkpoint of its own
                job.logger.log_checkpoint(files.checkpoint, result)
            files.write_result(result)
            job.logger.finish(0)
        return result
    except BaseException as e:
        record_failure(e, files, result, d, t0, job)
        raise


def record_failure(e: BaseException, files: RunFiles, result: dict[str, Any], d: Dist, t0: float,
                   job: Job | None) -> None:
    preempted = isinstance(e, (Preempted, KeyboardInterrupt, SystemExit))  # SystemExit: submitit requeued it
    result.update(status="interrupted" if preempted else "failed", wall_time_s=time.perf_counter() - t0,
                  finished_at=utc_now(), error=error_record(e))
    if not d.is_main:
        return
    log.error("job %s: %s (%s)", result["status"], result["error"]["message"], files.result)
    try:  # recording the failure must not hide it (e.g. the disk is full)
        files.write_result(result)
    except OSError as write_error:
        log.error("could not record the failure in %s: %s", files.result, write_error)
    if job is not None:
        try:
            job.logger.finish(1)
        except Exception as finish_error:
            log.error("could not mark the W&B run failed: %s", finish_error)
