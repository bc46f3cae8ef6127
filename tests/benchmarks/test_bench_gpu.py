"""benchmarks/bench_gpu.py is the script a lent GPU runs in one go (its device time is short and counted):
every branch of it — bf16 autocast and torch.compile on both sides' steps, the authors' side, the tiny run —
runs here on CPU at a tiny size, so the GPU run never meets an untested line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "ConditionalDETR"


@pytest.mark.slow
@pytest.mark.skipif(not (REFERENCE / "main.py").is_file(), reason="needs ../shared/reference (CI has it)")
def test_gpu_bench_runs_every_branch_on_cpu(tmp_path):
    cmd = [sys.executable, "bench_gpu.py", "--device", "cpu", "--smoke", "--compile-backend", "aot_eager",
           "--tiny-run", "fp32", "bf16", "--reference", str(REFERENCE), "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "gpu.json").read_text())
    modes = {(r["side"], r["mode"]) for r in data["rows"]}
    assert modes == {("authors", "fp32"), ("authors", "bf16"), ("ours", "fp32"), ("ours", "bf16"),
                     ("ours", "compile"), ("ours", "compile + bf16")}
    for r in data["rows"]:
        assert r["train"]["n"] == data["steps"] and r["train"]["median_s"] > 0 and r["infer_images_per_s"] > 0
    # the same weights on both sides: fp32 eval losses agree (ours loads the authors' state dict)
    loss = {r["side"]: r["eval_loss"] for r in data["rows"] if r["mode"] == "fp32"}
    assert loss["ours"] == pytest.approx(loss["authors"], rel=1e-5)
    assert [t["precision"] for t in data["tiny_run"]] == ["fp32", "bf16"]
    assert all(t["returncode"] == 0 and t["status"] == "finished" for t in data["tiny_run"]), data["tiny_run"]
    md = (tmp_path / "gpu.md").read_text()
    assert "| ours | compile + bf16 |" in md and "The default tiny run on this device" in md
    # the committed results were not touched
    assert str(tmp_path) not in (ROOT / "benchmarks" / "results" / "gpu.md").read_text()
