"""The package's Python API, as its docstring shows it, from a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import ablate


def test_build_model_with_the_defaults(tmp_path):
    model = ablate.build_model(ablate.compose([f"data.root={tmp_path}"]))
    assert model.num_classes == 6  # the shapes set's ids 1..5, read without generating the data
    assert not any(tmp_path.iterdir())


def test_build_model_in_a_fresh_interpreter():
    code = "import ablate; m = ablate.build_model(ablate.compose([])); print(type(m).__name__, m.num_classes)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Detector", "6"]
