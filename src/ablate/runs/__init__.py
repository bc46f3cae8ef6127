"""Run files (docs/run_files.md): every file in a job folder is written through this package."""

from ablate.runs.atomic import (
    append_jsonl,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
)
from ablate.runs.files import RunFiles, git_commit, utc_now
from ablate.runs.logger import Logger, LoggerConfig, NullLogger, build_logger

__all__ = [
    "Logger",
    "LoggerConfig",
    "NullLogger",
    "RunFiles",
    "append_jsonl",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_logger",
    "git_commit",
    "read_jsonl",
    "utc_now",
]
