"""The package docstring's Python API example, executed as written (only the run folder and photo are real)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import torch

import ablate

DOC_RUN = "outputs/runs/2026-12-01/12-00-00-000000"


def docstring_example() -> str:
    """The indented block after ``Python API::``."""
    block = ablate.__doc__.split("Python API::", 1)[1]
    lines = block.splitlines()[1:]
    code = []
    for line in lines:
        if line.strip() and not line.startswith("    "):
            break
        code.append(line)
    return textwrap.dedent("\n".join(code))


def test_the_package_docstring_runs(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = docstring_example()
    assert DOC_RUN in code and "photo.jpg" in code and "build_model" in code and ".predict(" in code
    photo = next((trained_run.parent / "data").rglob("val/*.jpg"))  # the data.root of tests/conftest.py
    shutil.copy(photo, tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code.replace(DOC_RUN, str(trained_run)), "ablate.__doc__", "exec"), namespace)
    assert namespace["out"]["pred_logits"].shape[0] == 2 and len(namespace["out"]["attention"]) > 0
    assert namespace["model"].cfg.csq.name == "full"  # the trained run's, not the example's composed config
    (det,) = namespace["detections"]
    assert set(det) == {"boxes", "scores", "labels", "names"}
    assert det["boxes"].shape == (len(det["names"]), 4) and torch.all(det["scores"] >= 0.5)
