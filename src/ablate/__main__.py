"""``python -m ablate [overrides]`` (``-m`` for a multirun sweep): the Hydra entry point."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from datetime import datetime
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ablate.callbacks import sweep_failures
from ablate.config import ConfigError, config_dir, register_schema
from ablate.engine.distributed import Dist, broadcast_object, cleanup, init_distributed
from ablate.runs.guard import LaunchRefused, check_launch

log = logging.getLogger("ablate")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def app(cfg: DictConfig) -> float | None:
    from ablate.app import run_job  # validates cfg, and records a job with an impossible value as failed

    hc = HydraConfig.get()
    if "joblib" in str(hc.launcher.get("_target_", "")) and cfg.data.num_workers:
        # DataLoader workers inside loky workers crash or hang (hydra#964); the job itself is the parallelism
        log.warning("data.num_workers=%s under the joblib launcher: using 0", cfg.data.num_workers)
        cfg.data.num_workers = 0
    sweep_dir = Path(hc.sweep.dir).absolute() if hc.mode == RunMode.MULTIRUN else None
    try:
        result = run_job(cfg, hc.runtime.output_dir, overrides=list(hc.overrides.task), sweep_dir=sweep_dir)
    except Exception as e:
        if sweep_dir is None:
            raise
        # Hydra's sweepers stop before the end-of-sweep callbacks when a job raises, which would lose the
        # report; the failure is in the job's result.json, and the sweep's exit status says so (main()).
        known = explain(e)
        if known is not None and known[0] == 2:  # the input's fault: one line, as for a single run
            log.error("ablate: %s (recorded in %s/result.json); the sweep goes on", known[1], hc.runtime.output_dir)
        else:
            log.exception("job failed (recorded in %s/result.json); the sweep goes on", hc.runtime.output_dir)
        return None
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


def shared_output_dirs(argv: list[str], d: Dist) -> list[str]:
    """Overrides pinning ``hydra.run.dir`` / ``hydra.sweep.dir`` to rank 0's clock.

    Under torchrun every rank composes its own config, and ``${now:...}`` would give each rank its own folder;
    a folder given on the command line is kept (it is the same on every rank already).
    """
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    stamp: datetime = broadcast_object(datetime.now(), d)  # type: ignore[assignment]
    hydra_cfg = OmegaConf.to_container(OmegaConf.load(config_dir() / "config.yaml"), resolve=False)["hydra"]
    out = []
    for mode in ("run", "sweep"):
        if f"hydra.{mode}.dir" not in given:
            pattern = str(hydra_cfg[mode]["dir"])  # type: ignore[index]
            out.append(f"hydra.{mode}.dir=" + re.sub(r"\$\{now:([^}]*)\}", lambda m: stamp.strftime(m.group(1)), pattern))
    return out


def main() -> None:
    register_schema()
    # torchrun: join the process group before Hydra creates (and names) the output folder, so all ranks share one
    d = init_distributed()
    if d.enabled:
        sys.argv += shared_output_dirs(sys.argv[1:], d)
    user_full_error = os.environ.get("HYDRA_FULL_ERROR")
    # Hydra would print a traceback and exit 1; let the error reach us so known ones get one clear line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        finished = check_launch(sys.argv[1:])  # before Hydra writes into a job folder
        if finished is not None:
            print(f"{finished.get('output_dir')} is already {finished['status']} with this config: nothing to run "
                  "(see its result.json)")
            return
        app()
        failed = sweep_failures()
        if failed:
            print(f"ablate: {failed} job(s) of the sweep failed; see their result.json and the sweep report",
                  file=sys.stderr)
            sys.exit(1)
    except BaseException as e:
        known = explain(e)
        if known is None or user_full_error == "1":
            raise
        code, message = known
        print(f"ablate: {message}", file=sys.stderr)
        sys.exit(code)
    finally:
        if user_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = user_full_error
        cleanup(d)


def explain(e: BaseException) -> tuple[int, str] | None:
    """(exit status, message) for errors that are the input's or the machine's fault, not a bug; else None.

    A job's failure is also in its result.json, with the traceback.
    """
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from ablate.data import DataError
    from ablate.engine.checkpoint import CheckpointMismatch
    from ablate.engine.signals import Preempted
    from ablate.engine.train import Diverged
    from ablate.engine.weights import WeightsError
    from ablate.models.backbone import BackboneWeightsError

    if isinstance(e, LaunchRefused):
        return e.code, str(e)
    if isinstance(e, ConfigError):
        return 2, f"config error: {e}"
    if isinstance(e, DataError):
        return 2, f"data error: {e}"
    if isinstance(e, (CheckpointMismatch, WeightsError, BackboneWeightsError)):
        return 2, str(e)
    if isinstance(e, OverrideParseException):  # Hydra's message names neither the argument nor the fix
        lines = [x for x in e.message.split("\n") if not x.startswith(("Error parsing override", "See https"))]
        reason = lines[0].removeprefix("LexerNoViableAltException: ") if lines else "not an override"
        return 2, (f"cannot parse the argument {e.override!r} ({reason}); a value with '=', spaces or brackets "
                   "needs quotes: key='value'")
    if isinstance(e, (HydraException, OmegaConfBaseException)):  # unknown option, wrong type, bad override
        cause = e.__cause__
        detail = f"\n{cause}" if isinstance(cause, OmegaConfBaseException) and str(cause) not in str(e) else ""
        return 2, f"{e}{detail}"
    if isinstance(e, Diverged):
        return 1, f"failed: {e}"
    if isinstance(e, Preempted):
        return 128 + signal.SIGTERM, f"interrupted: {e}; the same command resumes it"
    if isinstance(e, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(e, OSError):  # no space, read-only or missing folder, a file in the way
        if e.filename is not None and e.strerror and str(e.filename) not in e.strerror:
            return 1, f"{e.filename}: {e.strerror}"
        return 1, e.strerror or str(e)
    return None


if __name__ == "__main__":
    main()
