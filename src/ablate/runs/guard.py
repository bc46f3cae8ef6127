"""Before Hydra writes anything: a finished job's folder is never touched by a launch of another config, and a
folder whose job is running right now is not launched into a second time.

Hydra writes ``.hydra/*.yaml`` and its log into a job folder before any code of ours runs, so the check runs
in ``python -m ablate`` before ``app()``: it composes the config exactly as Hydra will (the same loader, the
same sweep expansion as the basic sweeper) to find every job folder the launch would write into.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ablate.runs.files import RunFiles

DONE = ("finished", "duplicate")
_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


class LaunchRefused(Exception):
    """A launch that would write into a folder it must not; ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def check_launch(argv: list[str]) -> dict[str, Any] | None:
    """Raise ``LaunchRefused`` if the launch would touch a finished job of another config or a running job.

    Returns the result of a single run whose folder already finished this very config (nothing to do), else
    None. Anything this check cannot work out (a bad override, a custom sweeper) is left to Hydra to report.
    """
    from hydra._internal.utils import get_args_parser

    try:
        args = get_args_parser().parse_args(argv)
    except SystemExit:
        return None
    if (args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.config_path
            or args.config_dir or args.experimental_rerun):
        return None
    try:
        jobs, run_cfg = _job_folders(args.overrides, args.config_name or "config", args.multirun)
    except Exception:  # Hydra reports a bad command line better, and with its own message
        return None
    if run_cfg is not None:
        _validate_run(run_cfg)
    for folder, cfg, label in jobs:
        finished = _check_folder(folder, cfg, label, single=len(jobs) == 1 and label == "")
        if finished is not None:
            return finished
    return None


def _validate_run(cfg: DictConfig) -> None:
    """A single run's impossible value or missing input (COCO folders and files, ``model.init_from``) stops the
    launch here, before Hydra creates its folder (exit 2, one line).

    A sweep's jobs are validated each in its own job instead, so an impossible one is recorded as failed in the
    sweep's report while the others run.
    """
    from ablate.config import ConfigError, validate
    from ablate.data import DataError
    from ablate.data.build import check_paths
    from ablate.engine.weights import WeightsError, resolve
    from ablate.job import resolve_device

    task = cfg.copy()
    with open_dict(task):
        del task["hydra"]
    try:
        validate(task)
        resolve_device(task.train.device)
        check_paths(task.data)
        init_from = task.model.get("init_from")
        if init_from and not str(init_from).startswith("wandb:"):  # an artifact is resolved (downloaded) by the job
            resolve(str(init_from))
    except (ConfigError, DataError, WeightsError):
        raise
    except Exception:  # e.g. an interpolation only Hydra's runtime resolves: the job validates it again
        return


def _job_folders(overrides: list[str], config_name: str,
                 multirun: bool) -> tuple[list[tuple[Path, DictConfig, str]], DictConfig | None]:
    """(folder, job config, label) of every job this launch runs whose folder exists already, and the config of
    a single run (None for a sweep)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from ablate.config import config_dir, register_schema

    register_schema()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        # the mode as Hydra decides it (hydra._internal.utils._run_app): -m, else hydra.mode, else a run; a run
        # has no sweep overrides, so this one composition is also its config
        master = loader.load_configuration(config_name, overrides, run_mode=RunMode.MULTIRUN,
                                           validate_sweep_overrides=False)
        if not (multirun or master.hydra.mode == RunMode.MULTIRUN):
            folder = Path(str(master.hydra.run.dir))
            return ([(folder, master, "")] if folder.is_dir() else []), master
        sweep_dir = Path(str(master.hydra.sweep.dir))
        if not sweep_dir.is_dir() or master.hydra.sweeper.get("_target_") != _BASIC_SWEEPER:
            return [], None  # a new sweep folder: nothing in it to protect
        jobs = []
        for num, job_overrides in enumerate(_sweep_jobs(master)):
            cfg = loader.load_sweep_config(master, list(job_overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = cfg.hydra.job.num = num
            folder = sweep_dir / str(cfg.hydra.sweep.subdir)
            if folder.is_dir():
                jobs.append((folder, cfg, f"job #{num} of the sweep"))
        return jobs, None


def _sweep_jobs(master: DictConfig) -> list[list[str]]:
    """The overrides of each job, in launch order, as Hydra's basic sweeper expands them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (master.hydra.sweeper.get("params") or {}).items()]
    task = list(OmegaConf.to_container(master.hydra.overrides.task))  # type: ignore[arg-type]
    parsed = OverridesParser.create().parse_overrides(params + task)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _check_folder(folder: Path, cfg: DictConfig, label: str, *, single: bool) -> dict[str, Any] | None:
    where = f"{folder}" + (f" ({label})" if label else "")
    if int(os.environ.get("RANK", "0")) == 0 and _locked(folder / ".lock"):  # under torchrun rank 0 holds it
        raise LaunchRefused(f"{where} is being run by another process right now; not starting a second copy "
                            "into the same folder", code=1)
    files = RunFiles(folder)
    previous = files.read_result()
    if not previous or previous.get("status") not in DONE:
        # an unfinished job resumes from its checkpoint: one of another config stays as it is, for its own
        # config (without Hydra's record of that config, the job itself compares the checkpoint's)
        if files.latest_checkpoint() is not None and (folder / ".hydra" / "config.yaml").is_file():
            differing = _differing_keys(folder, cfg, previous or {})
            if differing:
                raise LaunchRefused(f"{where} holds the checkpoint of an unfinished run of another config "
                                    f"({differing}); it is left as it is, to resume with its own config: run "
                                    f"this config in {_elsewhere(single)}", code=2)
        return None
    differing = _differing_keys(folder, cfg, previous)
    if differing:
        raise LaunchRefused(f"{where} holds a {previous['status']} run of another config ({differing}); it is "
                            f"left as it is: run this config in {_elsewhere(single)}", code=2)
    return previous if single else None


def _elsewhere(single: bool) -> str:
    return "a new hydra.run.dir (or none, for a fresh folder)" if single else "a new hydra.sweep.dir"


def _locked(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDONLY)  # read-only: the check never creates or changes the file
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock taken here
    return False


def _differing_keys(folder: Path, cfg: DictConfig, previous: dict[str, Any]) -> str:
    """'' when the folder's finished run is of this config; else the keys that differ, old → new.

    Compared over the model-defining keys (``effective_config``) the finished run's ``.hydra/config.yaml``
    holds: a key added to the schema since is not held against it. Without that file, its ``run_key`` decides.
    """
    from ablate.config import config_key, effective_config

    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        new = _flat(effective_config(task))
    except Exception as e:  # an axis name no registry knows: it cannot be the finished run's config
        return f"the new config is invalid: {e}"
    saved = folder / ".hydra" / "config.yaml"
    try:
        old = _flat(effective_config(OmegaConf.load(saved)))
    except Exception:
        same = previous.get("run_key") in (None, config_key(task))
        return "" if same else "its run_key differs, and it has no readable .hydra/config.yaml to say how"
    diffs = [f"{k}: {old[k]!r} → {new.get(k, '(absent)')!r}" for k in sorted(old) if old[k] != new.get(k, old[k])
             or k not in new]
    shown = "; ".join(diffs[:6]) + (" …" if len(diffs) > 6 else "")
    return shown


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}
