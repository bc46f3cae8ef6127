"""Read a sweep's run files (result.json, metrics.jsonl; docs/run_files.md) into pandas frames.

One row per job folder. Failed, missing and duplicate jobs stay in the frame with their status, so every later
step (tables, figures) can show them instead of silently dropping them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ablate.report.schema import result_problem
from ablate.runs.atomic import read_jsonl
from ablate.runs.files import RunFiles, UnreadableResult

METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# Axis names used when no result.json tells us which axes exist (e.g. a sweep whose jobs are all missing).
DEFAULT_AXES: tuple[str, ...] = ("csq", "proj", "ref", "focal", "offset", "model", "num_queries")
# Columns that are not axes; every other column of a gathered frame is an axis.
BASE_COLUMNS: tuple[str, ...] = (
    "job", "sweep", "status", "variant", "variant_key", "counted", "kept", "seed", "config_key", "duplicate_of",
    *METRICS, "steps", "wall_time_s", "params_total", "error", "error_type", "error_step", "variant_name",
    "wandb_group", "labels", "per_class",
)


class NoJobsFound(FileNotFoundError):
    """No job folder (one with result.json, or a sweep job with .hydra/) under the given folders."""


def gather(dirs: Iterable[Path | str]) -> pd.DataFrame:
    """One row per job folder found recursively under `dirs`.

    A job folder holds `result.json`; a folder with `.hydra/` but no `result.json` is a job that never got going
    and gets status `missing`. Columns: see BASE_COLUMNS, plus one column per `axes.*` key. `variant_key` groups
    the seeds of one variant (the config_key), `variant` is its label from the axes that vary, and `counted`
    says whether the row's metrics count towards its variant (a model is counted once).
    """
    dirs = [Path(d) for d in dirs]
    found = _find_jobs(dirs)
    if not found:
        raise NoJobsFound(
            "no job folder (a folder with result.json, or a sweep job folder with .hydra/) under: "
            + ", ".join(str(d) for d in dirs)
        )
    rows = [_read_job(job, sweep) for job, sweep in found]
    axes = _axis_order(rows)
    # object dtype keeps axis values as written (20, not 20.0 once a missing job adds a NaN)
    df = pd.DataFrame(rows, dtype=object)
    for col in (*METRICS, "steps", "wall_time_s", "params_total", "error_step"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in BASE_COLUMNS:
        if col not in df:
            df[col] = None
    for axis in axes:
        if axis not in df:
            df[axis] = None
    df = df[[c for c in BASE_COLUMNS if c not in ("variant", "variant_key", "counted", "kept")] + axes]
    df = _assign_variants(df, axes)
    df["counted"], df["kept"] = _counted(df)
    order = ["job", "sweep", "status", "variant", *axes]
    return df[order + [c for c in df.columns if c not in order]].reset_index(drop=True)


def axis_columns(df: pd.DataFrame) -> list[str]:
    """The axis columns of a gathered frame, in the order the run files list them."""
    return [c for c in df.columns if c not in BASE_COLUMNS]


def varying_axes(df: pd.DataFrame) -> list[str]:
    """Axes that take more than one value across the frame (seed is never an axis)."""
    out = []
    for axis in axis_columns(df):
        values = {format_value(v) for v in df[axis] if not _isna(v)}
        if len(values) > 1 and axis != "seed":
            out.append(axis)
    return out


def format_value(value: Any) -> str:
    """Axis value as the run files spell it in `variant` (booleans lower case, whole floats as ints)."""
    if _isna(value):
        return "?"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Long frame of every job's metrics.jsonl: job, variant, variant_key, seed, counted, kind, step, metrics...

    Lines that do not parse (a killed run's truncated last line) or lack `kind`/`step` are skipped.
    """
    records: list[dict[str, Any]] = []
    for row in df.itertuples(index=False):
        for obj in read_jsonl(Path(row.job) / "metrics.jsonl"):  # skips lines that do not parse
            if not isinstance(obj, dict) or "kind" not in obj or "step" not in obj:
                continue
            records.append({"job": row.job, "variant": row.variant, "variant_key": row.variant_key,
                            "seed": row.seed, "counted": row.counted, **obj})
    head = ["job", "variant", "variant_key", "seed", "counted", "kind", "step"]
    if not records:
        return pd.DataFrame(columns=head)
    curves = pd.DataFrame.from_records(records)
    for col in curves.columns.difference(head[:-1]):  # a hand-edited line's "AP": "x" reads as missing
        curves[col] = pd.to_numeric(curves[col], errors="coerce")
    curves = curves.dropna(subset=["step"])
    return curves[head + [c for c in curves.columns if c not in head]].reset_index(drop=True)


def gather_wandb(entity_project: str, group: str | None = None) -> pd.DataFrame:
    """Runs of a W&B project (optionally one group) as a frame with the same metric columns as `gather`.

    Needs the `wandb` package and online access; raises RuntimeError with the reason otherwise.
    """
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        raise RuntimeError(
            f"gathering runs from W&B needs online access, but WANDB_MODE={mode}; "
            "sync the offline runs (`wandb sync`) and run the report with WANDB_MODE=online"
        )
    try:
        import wandb
    except ImportError as exc:
        raise RuntimeError("gathering runs from W&B needs the `wandb` package") from exc
    filters = {"group": group} if group else None
    try:
        runs = list(wandb.Api().runs(entity_project, filters=filters))
    except Exception as exc:  # the API raises many types (network, auth, unknown project)
        raise RuntimeError(f"could not list W&B runs of {entity_project!r}: {exc}") from exc
    rows = []
    for run in runs:
        summary = dict(run.summary._json_dict)
        config = {k: v for k, v in run.config.items() if not k.startswith("_")}
        row: dict[str, Any] = {"job": "/".join(run.path), "name": run.name, "group": run.group,
                               "job_type": run.job_type,
                               "status": {"crashed": "failed", "killed": "failed"}.get(run.state, run.state)}
        for metric in METRICS:
            # final/*: the job's final metrics (val/AP and val/AP50 hold {"max", "last"} summaries)
            row[metric] = next((summary[k] for k in (f"final/{metric}", metric, f"val/{metric}", f"eval/{metric}")
                                if isinstance(summary.get(k), (int, float))), math.nan)
        row.update({k: v for k, v in _flatten(config).items() if k not in row})
        rows.append(row)
    return pd.DataFrame(rows)


# --- internals -----------------------------------------------------------------------------------------------


def _find_jobs(dirs: list[Path]) -> list[tuple[Path, Path]]:
    seen: dict[Path, Path] = {}
    for sweep in dirs:
        if not sweep.is_dir():
            continue
        candidates = [p.parent for p in sweep.rglob("result.json") if p.is_file()]
        candidates += [p.parent for p in sweep.rglob(".hydra") if p.is_dir()]
        for job in candidates:
            seen.setdefault(job.resolve(), sweep)
    return sorted(seen.items(), key=lambda kv: _natural_key(str(kv[0])))


def _natural_key(text: str) -> list[Any]:
    # Hydra names jobs <num>_<overrides>; sort 10_ after 9_.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _read_job(job: Path, sweep: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"job": str(job), "sweep": str(sweep)}
    try:
        result = RunFiles(job).load_result()
        problem = None if result is None else result_problem(result)
    except UnreadableResult as exc:
        result, problem = None, str(exc)
    if problem is not None:
        row.update(status="unreadable", axes=_read_overrides(job), error=problem)
        return row
    if result is None:
        overrides = _read_overrides(job)
        row.update(status="missing", seed=overrides.pop("seed", None), axes=overrides,
                   error="no result.json (the job never started or was killed before writing it)")
        return row
    metrics = result.get("metrics") or {}
    if result.get("status") == "duplicate" and not metrics and result.get("duplicate_of"):
        metrics = _original_metrics(Path(result["duplicate_of"]))
    error = result.get("error") or {}
    if isinstance(error, str):
        error = {"message": error}
    row.update(
        status=result.get("status", "unknown"),
        axes=dict(result.get("axes") or {}),
        variant_name=result.get("variant"),
        seed=result.get("seed"),
        config_key=result.get("config_key"),
        duplicate_of=result.get("duplicate_of"),
        steps=result.get("steps"),
        wall_time_s=result.get("wall_time_s"),
        params_total=(result.get("params") or {}).get("total"),
        error=error.get("message"),
        error_type=error.get("type"),
        error_step=error.get("step"),
        wandb_group=(result.get("wandb") or {}).get("group"),
        labels=result.get("labels"),
        per_class=result.get("per_class"),
    )
    for metric in METRICS:
        value = metrics.get(metric)
        row[metric] = float(value) if isinstance(value, (int, float)) else math.nan
    return row


def _original_metrics(original: Path) -> dict[str, Any]:
    # A duplicate job may skip training and carry no metrics; the model it duplicates has them.
    result = RunFiles(original).read_result() or {}
    metrics = result.get("metrics")
    return metrics if result.get("status") == "finished" and isinstance(metrics, dict) else {}


def _read_overrides(job: Path) -> dict[str, Any]:
    """Axis values of a job without result.json, from Hydra's overrides.yaml (`key=value` strings)."""
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError:
        return {}
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            continue
        key, value = item.split("=", 1)
        key = key.lstrip("+~").rsplit(".", 1)[-1]
        out[key] = yaml.safe_load(value) if value else value
    return out


def _axis_order(rows: list[dict[str, Any]]) -> list[str]:
    axes: list[str] = []
    for row in rows:
        if row["status"] in ("missing", "unreadable"):
            continue
        axes += [a for a in row["axes"] if a not in axes and a not in BASE_COLUMNS]
    if not axes:
        axes = [a for a in DEFAULT_AXES if any(a in r["axes"] for r in rows)]
    known = set(axes)
    for row in rows:
        axes_of_row = row.pop("axes")
        # Overrides of a missing job may name non-axis keys (lr=...); keep only real axes.
        row.update({a: v for a, v in axes_of_row.items() if a in known})
    return axes


def _assign_variants(df: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    df = df.copy()
    keys = df["config_key"].astype(object).where(df["config_key"].notna(), None)
    representative: dict[str, pd.Series] = {}
    for i, key in keys.items():
        if key is not None and key not in representative:
            representative[key] = df.loc[i]
    for i in df.index[keys.isna()]:
        known = {a: format_value(df.at[i, a]) for a in axes if not _isna(df.at[i, a])}
        matches = [k for k, rep in representative.items()
                   if known and all(format_value(rep[a]) == v for a, v in known.items())]
        keys[i] = matches[0] if len(matches) == 1 else "axes:" + " ".join(f"{a}={v}" for a, v in known.items())
    df["variant_key"] = keys
    # Label a variant from the axes of its first row that has axes (a missing row may know only some).
    vary = varying_axes(df)
    labels: dict[str, str] = {}
    for key, group in df.groupby("variant_key", sort=False):
        rep = group.iloc[int(group[axes].notna().sum(axis=1).argmax())] if axes else group.iloc[0]
        if vary:
            labels[key] = " ".join(f"{a}={format_value(rep[a])}" for a in vary)
        else:
            labels[key] = rep["variant_name"] if isinstance(rep["variant_name"], str) else "default"
    counts = pd.Series(list(labels.values())).value_counts()
    for key, label in labels.items():
        if counts[label] > 1:  # same axes, different config (e.g. another lr): keep rows apart
            labels[key] = f"{label} [{str(key).removeprefix('axes:')[:7]}]"
    df["variant"] = df["variant_key"].map(labels)
    return df


def _counted(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Which rows' metrics count towards their variant (each trained model once), and for a finished job that
    repeats another's config and seed (two processes ran the same job), the job kept instead: the first gathered,
    in the order of the folders given and then of job numbers. No run file is edited to decide it."""
    gathered = {str(Path(j).resolve()) for j in df["job"]}
    counted = pd.Series(False, index=df.index)
    kept = pd.Series(None, index=df.index, dtype=object)
    seen: dict[tuple[str, str], str] = {}
    for i, row in df.iterrows():
        has_metrics = not _isna(row["AP"])
        if row["status"] == "finished":
            ok = has_metrics
        elif row["status"] == "duplicate":
            original = row["duplicate_of"]
            ok = has_metrics and not (isinstance(original, str) and str(Path(original).resolve()) in gathered)
        else:
            ok = False
        if ok and not _isna(row["seed"]):
            # Same config and seed in two gathered folders is the same model: count it once.
            ident = (str(row["variant_key"]), format_value(row["seed"]))
            if ident in seen:
                ok, kept[i] = False, seen[ident]
            else:
                seen[ident] = str(row["job"])
        counted[i] = ok
    return counted, kept


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and set(value) != {"value"}:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value["value"] if isinstance(value, dict) else value
    return out


def _isna(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
