"""Atomic report files, through the project's one atomic-write module (ablate.runs.atomic)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ablate.runs.atomic import atomic_write_text, commit_temp, write_temp

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` (temp file + os.replace) and return `path`."""
    atomic_write_text(path, text)
    return Path(path)


def save_figure(fig: Figure, path: Path, *, dpi: int) -> Path:
    """Save `fig` as PNG to `path` (temp file + os.replace) and return `path`."""
    path = Path(path)
    # The temp name ends in .tmp, so the format is given explicitly.
    commit_temp(write_temp(path, lambda f: fig.savefig(f, format="png", dpi=dpi)), path)
    return path
