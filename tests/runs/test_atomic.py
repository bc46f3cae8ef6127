"""Atomic writes survive injected failures; JSON-lines readers survive truncated lines."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat

import numpy as np
import pytest
import torch

from ablate.runs import atomic
from ablate.runs.atomic import (
    append_jsonl,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_and_overwrites(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "sub" / "a.txt", "héllo")  # creates the folder
    atomic_write_text(tmp_path / "sub" / "a.txt", "second")
    assert (tmp_path / "sub" / "a.txt").read_text() == "second"

    obj = {"AP": np.float64(0.5), "APs": float("nan"), "n": np.int64(3), "p": tmp_path, "l": (1, 2)}
    atomic_write_json(tmp_path / "r.json", obj)
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and text.startswith("{\n  ")  # strict JSON, indent 2
    assert json.loads(text) == {"AP": 0.5, "APs": None, "n": 3, "p": str(tmp_path), "l": [1, 2]}

    atomic_torch_save({"w": torch.arange(3)}, tmp_path / "c.pt")
    assert torch.equal(torch.load(tmp_path / "c.pt")["w"], torch.arange(3))
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "sub") == []


def test_permissions_follow_umask(tmp_path):
    # tempfile.mkstemp would leave 0600 files, unreadable by others sharing a sweep folder.
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_disk_full_leaves_previous_file_intact(tmp_path, monkeypatch, failing):
    path = tmp_path / "result.json"
    atomic_write_json(path, {"status": "running"})
    before = path.read_bytes()

    def enospc(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, enospc)
    with pytest.raises(OSError) as info:
        atomic_write_json(path, {"status": "finished", "metrics": {"AP": 0.4}})
    monkeypatch.undo()

    assert info.value.errno == errno.ENOSPC
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_failing_writer_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"step": 1}, path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 -- pickling a lambda: the error type is torch's business
        atomic_torch_save({"step": 2, "fn": lambda: None}, path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    with pytest.raises(TypeError):  # unserialisable JSON fails before any file is touched
        atomic_write_json(tmp_path / "x.json", {"a": object()})
    assert not (tmp_path / "x.json").exists() and leftovers(tmp_path) == []


def test_read_jsonl_skips_truncated_last_line(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"kind": "train", "step": 1, "loss": 2.0})
    append_jsonl(path, {"kind": "eval", "step": 2, "AP": float("nan")})
    with open(path, "ab") as f:  # a run killed mid-write
        f.write(b'{"kind": "train", "st')
    with caplog.at_level(logging.WARNING, logger=atomic.__name__):
        records = read_jsonl(path)
    assert records == [{"kind": "train", "step": 1, "loss": 2.0}, {"kind": "eval", "step": 2, "AP": None}]
    assert "skipped 1 unparsable line(s) (line 3)" in caplog.text

    # The resumed run appends on a fresh line instead of gluing onto the broken one.
    append_jsonl(path, {"kind": "train", "step": 3})
    assert read_jsonl(path)[-1] == {"kind": "train", "step": 3}
    assert len(read_jsonl(path)) == 3
    assert path.read_bytes().endswith(b"\n")
    assert read_jsonl(tmp_path / "missing.jsonl") == []
