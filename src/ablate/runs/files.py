"""The files of one job's output folder (docs/run_files.md), all written through ``ablate.runs.atomic``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ablate.runs.atomic import (
    PathLike,
    append_jsonl,
    atomic_write_json,
    commit_temp,
    read_jsonl,
    write_temp,
)

log = logging.getLogger(__name__)


class UnreadableResult(ValueError):
    """``result.json`` exists but cannot be read as a JSON object; the message says why."""


class RunFiles:
    """Paths and readers/writers for a job folder (Hydra's ``hydra.runtime.output_dir``)."""

    def __init__(self, output_dir: PathLike) -> None:
        # absolute(), not resolve(): keep the user's symlinked scratch paths as they typed them.
        self.output_dir = Path(output_dir).absolute()
        self.result = self.output_dir / "result.json"
        self.metrics = self.output_dir / "metrics.jsonl"
        self.detections = self.output_dir / "detections.json"
        self.checkpoint = self.output_dir / "checkpoint.pt"
        self.checkpoint_prev = self.output_dir / "checkpoint.prev.pt"
        self.wandb_dir = self.output_dir / "wandb"
        self.wandb_id = self.output_dir / "wandb_id.txt"

    def __repr__(self) -> str:
        return f"RunFiles({str(self.output_dir)!r})"

    # result.json ------------------------------------------------------------------------------------
    def read_result(self) -> dict | None:
        """The job's ``result.json``; None if missing or unreadable (a warning says which)."""
        try:
            return self.load_result()
        except UnreadableResult as e:
            # Atomic writes make this unlikely; a hand-edited or foreign file should not crash a sweep.
            log.warning("corrupt %s (%s): treating it as missing", self.result, e)
            return None

    def load_result(self) -> dict | None:
        """The job's ``result.json``, None if there is none; raises UnreadableResult (with the reason) for a
        file that cannot be read, is not UTF-8, is not JSON or is not a JSON object."""
        try:
            text = self.result.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise UnreadableResult(f"result.json: {e}") from None
        try:
            result = json.loads(text)
        except ValueError as e:
            raise UnreadableResult(f"result.json: not JSON ({e})") from None
        if not isinstance(result, dict):
            kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(result), "number")
            raise UnreadableResult(f"result.json: a JSON {kind}, not an object")
        return result

    def write_result(self, result: dict) -> None:
        """Atomically replace ``result.json`` (NaN metrics are written as null)."""
        atomic_write_json(self.result, result)

    def update_result(self, **fields: Any) -> dict:
        """Read-modify-write ``result.json`` with ``fields`` (top-level keys); returns the new result."""
        result = self.read_result() or {}
        result.update(fields)
        self.write_result(result)
        return result

    # metrics.jsonl ----------------------------------------------------------------------------------
    def log_metrics(self, record: dict) -> None:
        """Append one line to ``metrics.jsonl``; ``record["kind"]`` is ``"train"`` or ``"eval"``."""
        if "kind" not in record:
            raise ValueError(f"metrics record needs a 'kind' ('train' | 'eval'): {sorted(record)}")
        append_jsonl(self.metrics, record)

    def read_metrics(self, kind: str | None = None) -> list[dict]:
        """The parsable lines of ``metrics.jsonl`` (optionally only one ``kind``)."""
        records = read_jsonl(self.metrics)
        return records if kind is None else [r for r in records if r.get("kind") == kind]

    # detections.json / checkpoints ------------------------------------------------------------------
    def write_detections(self, detections: list[dict]) -> None:
        """Atomically write COCO results (compact: a full val set is ~10^5 entries)."""
        atomic_write_json(self.detections, detections, indent=None)

    def save_checkpoint(self, state: Any) -> None:
        """Atomically write ``checkpoint.pt``, keeping the previous one as ``checkpoint.prev.pt``.

        The new file is written and fsynced before the old one is rotated, so a crash (or a full
        disk) at any point leaves at least one complete checkpoint.
        """
        import torch  # lazy: readers of run files don't need torch

        tmp = write_temp(self.checkpoint, lambda f: torch.save(state, f))
        try:
            if self.checkpoint.exists():
                os.replace(self.checkpoint, self.checkpoint_prev)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        commit_temp(tmp, self.checkpoint)

    def latest_checkpoint(self) -> Path | None:
        """``checkpoint.pt``, else ``checkpoint.prev.pt`` (a crash mid-rotation), else None."""
        for path in (self.checkpoint, self.checkpoint_prev):
            if path.is_file():
                return path
        return None


def git_commit(repo_root: PathLike | None = None) -> str | None:
    """HEAD of the git checkout this package runs from (or of ``repo_root``); None if not a checkout.

    Never raises.
    """
    try:
        # src/ablate/runs/files.py -> repo root. Checked explicitly so a wheel installed in a venv that
        # happens to live inside some other repository doesn't report that repository's commit.
        root = Path(repo_root) if repo_root is not None else Path(__file__).resolve().parents[3]
        if not ((root / ".git").exists() and (root / "pyproject.toml").is_file()):
            return None
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
        commit = out.stdout.strip()
        return commit if out.returncode == 0 and commit else None
    except Exception as e:  # no git binary, timeout, "dubious ownership", ...
        log.debug("git commit unavailable: %s", e)
        return None


def utc_now() -> str:
    """Current UTC time, ISO 8601 with offset, to the second (``2026-11-25T14:00:00+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
