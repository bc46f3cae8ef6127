import subprocess
import sys
from pathlib import Path

import ablate
from ablate.report.__main__ import main


def _env_with_ablate() -> dict:
    import os

    # The child must import the same ablate as this process, however it was installed.
    src = str(Path(ablate.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def test_cli_fails_clearly_without_jobs(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "ablate.report", str(tmp_path / "empty")], capture_output=True,
                          text=True, env=_env_with_ablate(), timeout=120)
    assert proc.returncode != 0
    assert "no job folder" in proc.stderr
    assert not (tmp_path / "empty" / "report").exists()


def test_cli_exit_zero_with_failed_jobs(sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main([str(sweep), "--out", str(out), "--title", "CLI", "--no-wandb", "--wandb", "me/p"]) == 0
    index = (out / "index.md").read_text()
    assert index.startswith("# CLI") and "2 failed" in index
    assert f"python -m ablate.report {sweep} --out {out}" in index
    assert not (out / "wandb").exists()  # --no-wandb wins
    assert "index.md" in capsys.readouterr().out


def test_cli_attention_run_not_available_still_writes_report(sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main([str(sweep), "--out", str(out), "--attention-run", str(tmp_path / "nojob")]) == 0
    assert "no attention maps" in capsys.readouterr().err
    assert (out / "index.md").exists()
