"""Log a finished report to W&B as one run (job_type "report") in the sweep's group: the table and the figures.

Offline unless WANDB_MODE=online; nothing happens when W&B is disabled or not installed.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd


def wandb_mode() -> str:
    """`online` only when the user's environment asks for it; `disabled` stays disabled; else `offline`."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    return mode if mode in ("online", "disabled") else "offline"


def split_entity_project(entity_project: str) -> tuple[str | None, str]:
    """`ENTITY/PROJECT` or `PROJECT` -> (entity or None, project)."""
    entity, _, project = entity_project.rpartition("/")
    if not project:
        raise ValueError(f"expected ENTITY/PROJECT or PROJECT, got {entity_project!r}")
    return entity or None, project


def log_report(entity_project: str, group: str, table: pd.DataFrame, summary: pd.DataFrame,
               figures: Mapping[str, Path], out: Path, *, mode: str | None = None,
               tables: Mapping[str, pd.DataFrame] | None = None, job_dirs: Iterable[Path | str] = ()) -> str | None:
    """Log `table` (formatted), `summary` (numbers) and `tables` (e.g. per_class, orderings) as wandb.Table,
    each figure as wandb.Image, and `job_dirs` (the jobs summarised) as a `runs` table linking each job's W&B
    run, their ids in the config.

    The run's files go under `out/wandb`. Returns the run's local folder, or None if nothing was logged.
    """
    mode = mode or wandb_mode()
    if mode == "disabled":
        return None
    try:
        import wandb
    except ImportError:
        warnings.warn("wandb is not installed; the report was not logged to W&B", stacklevel=2)
        return None
    entity, project = split_entity_project(entity_project)
    runs = linked_runs(job_dirs, entity, project)
    with wandb.init(entity=entity, project=project, group=group, job_type="report", name=f"report-{group}",
                    dir=str(out), mode=mode, reinit="create_new",
                    config={"report_dir": str(out), "runs": [r["wandb_id"] for r in runs if r["wandb_id"]]},
                    settings=wandb.Settings(silent=True)) as run:
        run.log({
            "ablation_table": wandb.Table(dataframe=_stringify(table.reset_index())),
            "ablation_numbers": wandb.Table(dataframe=_stringify(summary.reset_index())),
            **{name: wandb.Table(dataframe=_stringify(frame)) for name, frame in (tables or {}).items()},
            **({"runs": wandb.Table(dataframe=_stringify(pd.DataFrame(runs)))} if runs else {}),
            **{f"figures/{Path(name).stem}": wandb.Image(str(path)) for name, path in figures.items()},
        })
        run_dir = str(Path(run.dir).parent)
    # wandb 0.31's finish() can return before wandb-core has flushed the run file (see ablate.runs.logger).
    wandb.teardown()
    return run_dir


def linked_runs(job_dirs: Iterable[Path | str], entity: str | None, project: str) -> list[dict]:
    """One row per job with a W&B run: job folder, variant, seed, status, AP and the run's link (its URL when
    online, else ``entity/project/runs/id``, which is where `wandb sync` puts it)."""
    rows = []
    for job in job_dirs:
        try:
            result = json.loads((Path(job) / "result.json").read_text())
        except (OSError, ValueError):
            continue
        info = result.get("wandb") or {}
        if not info.get("id"):
            continue
        where = f"{info.get('entity') or entity or '<entity>'}/{info.get('project') or project}/runs/{info['id']}"
        rows.append({"job": str(job), "variant": result.get("variant"), "seed": result.get("seed"),
                     "status": result.get("status"), "AP": (result.get("metrics") or {}).get("AP"),
                     "wandb_id": info["id"], "link": info.get("url") or where})
    return rows


def _stringify(frame: pd.DataFrame) -> pd.DataFrame:
    # wandb.Table wants one type per column; axis columns mix bools and "n/a".
    frame = frame.copy()
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col]):
            frame[col] = frame[col].astype(str)
    return frame
