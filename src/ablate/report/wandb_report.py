"""Log a finished report to W&B as one run (job_type "report") in the sweep's group: the table and the figures.

Offline unless WANDB_MODE=online; nothing happens when W&B is disabled or not installed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
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
               tables: Mapping[str, pd.DataFrame] | None = None) -> str | None:
    """Log `table` (formatted), `summary` (numbers) and `tables` (e.g. per_class, orderings) as wandb.Table and
    each figure as wandb.Image.

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
    with wandb.init(entity=entity, project=project, group=group, job_type="report", name=f"report-{group}",
                    dir=str(out), mode=mode, reinit="create_new",
                    config={"report_dir": str(out)}, settings=wandb.Settings(silent=True)) as run:
        run.log({
            "ablation_table": wandb.Table(dataframe=_stringify(table.reset_index())),
            "ablation_numbers": wandb.Table(dataframe=_stringify(summary.reset_index())),
            **{name: wandb.Table(dataframe=_stringify(frame)) for name, frame in (tables or {}).items()},
            **{f"figures/{Path(name).stem}": wandb.Image(str(path)) for name, path in figures.items()},
        })
        run_dir = str(Path(run.dir).parent)
    # wandb 0.31's finish() can return before wandb-core has flushed the run file (see ablate.runs.logger).
    wandb.teardown()
    return run_dir


def _stringify(frame: pd.DataFrame) -> pd.DataFrame:
    # wandb.Table wants one type per column; axis columns mix bools and "n/a".
    frame = frame.copy()
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col]):
            frame[col] = frame[col].astype(str)
    return frame
