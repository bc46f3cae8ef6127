"""Crash-safe file writes: a reader sees the old file or the new one, never half of one.

Pattern: write a temp file in the same folder (same filesystem, so ``os.replace`` is atomic), flush +
fsync it, ``os.replace`` it over the target, then fsync the folder so the rename itself survives a
power cut. On any failure the temp file is removed and the previous file is left untouched.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    _atomic_write(Path(path), lambda f: f.write(data))


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Atomically replace ``path`` with ``text``."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: PathLike, obj: Any, indent: int | None = 2) -> None:
    """Atomically write ``obj`` as JSON (``indent=None`` for compact output of big files).

    NaN/inf become ``null`` (strict JSON: other tools choke on ``NaN``); numpy scalars/arrays and
    paths are converted. Serialisation happens before any file is touched.
    """
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n")


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """Atomically ``torch.save(obj, path)`` (argument order as ``torch.save``)."""
    import torch  # lazy: report tooling reads run files without needing torch loaded

    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def write_temp(path: Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Write a durable (fsynced) hidden temp file next to ``path``; the caller ``os.replace``s it.

    On failure the temp file is removed and the error re-raised naming ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name, so globs such as ``*/result.json`` never see it; os.open with 0o666 respects the
    # umask (tempfile.mkstemp would give 0600 files that other users of a shared sweep can't read).
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        _remove_quietly(tmp)
        if isinstance(e, OSError):
            raise _with_path(e, path) from e
        raise
    return tmp


def commit_temp(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)`` + fsync of the folder; removes ``tmp`` if the rename fails."""
    try:
        os.replace(tmp, path)
    except BaseException as e:
        _remove_quietly(tmp)
        if isinstance(e, OSError):
            raise _with_path(e, path) from e
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """fsync a directory so renames/creations in it are durable (best effort where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. platforms without directory handles
    try:
        os.fsync(fd)
    except OSError as e:
        # Some filesystems (certain network/FUSE mounts) refuse fsync on a directory.
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
        log.debug("fsync of folder %s not supported: %s", folder, e)
    finally:
        os.close(fd)


def append_jsonl(path: PathLike, obj: dict) -> None:
    """Append ``obj`` as one JSON line to ``path``, flushed and fsynced.

    If a killed writer left a partial last line (no trailing newline), a newline is written first so
    this record is not glued onto the broken one.
    """
    path = Path(path)
    line = json.dumps(to_jsonable(obj), allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "ab+") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write((line + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _with_path(e, path) from e


def read_jsonl(path: PathLike) -> list[dict]:
    """Read a JSON-lines file; ``[]`` if it does not exist.

    Lines that don't parse to a JSON object (typically a truncated last line from a killed run) are
    skipped and counted in a warning: readers must tolerate them (docs/run_files.md).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    records: list[dict] = []
    bad: list[int] = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            obj = None
        if isinstance(obj, dict):
            records.append(obj)
        else:
            bad.append(lineno)
    if bad:
        log.warning("%s: skipped %d unparsable line(s) (line %s)", path, len(bad), ", ".join(map(str, bad[:10])))
    return records


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON version of ``obj``: non-finite floats -> None, numpy/torch scalars -> python, paths -> str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy scalar/array, torch tensor
        return to_jsonable(obj.tolist())
    return obj  # json.dumps raises TypeError for anything else, naming the type


def _atomic_write(path: Path, writer: Callable[[IO[bytes]], Any]) -> None:
    commit_temp(write_temp(path, writer), path)


def _remove_quietly(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("could not remove temp file %s: %s", tmp, e)


def _with_path(e: OSError, path: Path) -> OSError:
    """The same OSError class, with ``path`` in its message (the temp file's name means little)."""
    try:
        return type(e)(e.errno, f"{e.strerror or e} (while writing {path})", str(path))
    except TypeError:  # an OSError subclass with another constructor
        return OSError(e.errno, f"{e.strerror or e} (while writing {path})", str(path))
