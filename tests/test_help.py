"""`ablate --help` lists every ablation choice and named sweep from conf/ and sweeps/; shell completion works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.config import config_dir, sweeps_dir
from ablate.help import GROUPS, describe, help_text


def test_help_text_lists_every_choice_with_its_description():
    text = help_text(config_dir(), sweeps_dir())
    lines = text.splitlines()
    for group in GROUPS:
        header = next(line for line in lines if line.startswith(f"  {group} "))
        for path in sorted((config_dir() / group).glob("*.yaml")):
            assert path.stem in header, (group, path.stem)
            description = describe(config_dir() / group, path.stem)
            assert description and any(path.stem in line and description in line for line in lines), path
    assert "full, C, I, P, T, detr, detr_content" in text  # the default first
    for path in sweeps_dir().glob("*.yaml"):
        assert any(line.startswith(f"  {path.stem} ") for line in lines), path.stem
    assert text.count("  python -m ablate") == 5
    assert "focal" in text and "offset" in text and "+experiment=NAME" in text


def test_describe_skips_the_package_line(tmp_path):
    (tmp_path / "a.yaml").write_text("# @package _global_\n# What it is: a thing\nkey: 1\n")
    (tmp_path / "b.yaml").write_text("key: 1\n# not a description\n")
    assert describe(tmp_path, "a") == "What it is: a thing"
    assert describe(tmp_path, "b") == describe(tmp_path, "missing") == ""
    assert describe(tmp_path, "a", limit=8) == "What it…"


def test_cli_help_uses_the_template(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ablate", "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ablate: ablation studies of Conditional DETR")
    assert "powered by Hydra" not in proc.stdout and "csq      conditional spatial query" in proc.stdout
    assert "table3_csq" in proc.stdout and not Path(tmp_path, "outputs").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_of_the_ablate_script(tmp_path):
    script = Path(sys.executable).parent / "ablate"
    if not script.is_file():
        pytest.skip("the ablate console script is not installed in this environment (pip install -e .)")
    body = ('eval "$(ablate -sc install=bash)"\n'
            'COMP_LINE="ablate csq=" COMP_POINT=11 COMP_CWORD=1 hydra_bash_completion\n'
            'echo "${COMPREPLY[*]}"\n')
    env = {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"csq={p.stem}" for p in sorted((config_dir() / "csq").glob("*.yaml"))]
