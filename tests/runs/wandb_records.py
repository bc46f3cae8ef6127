"""Read an offline W&B run back: the records of its ``run-*.wandb`` file, decoded with wandb's own protobufs.

wandb-core writes the file in LevelDB's log format (32 KiB blocks of checksummed chunks) after a 7-byte
``:W&B`` header; wandb 0.31 ships no Python reader for it, so this is the ~30-line one tests need.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = 7  # crc32 (4), length (2), chunk type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[Any]:
    """Every ``wandb_internal_pb2.Record`` in the file, in order; raises on a bad checksum."""
    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1 and version == 0, (ident, magic, version)
    records, pending, pos = [], b"", 7
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the tail of a block too short for a chunk header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        if kind == 0 and length == 0:  # zero padding
            pos += left
            continue
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == crc, f"bad checksum at {pos}"
        pos += HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def run_file(job_dir: Path) -> Path:
    """The one ``run-*.wandb`` file of a job folder's offline run."""
    files = sorted(Path(job_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0]


def summarize(path: Path) -> dict[str, Any]:
    """What a dashboard would show: run fields, config, history rows, the final summary, metric definitions,
    artifacts, and the files of the run."""
    out: dict[str, Any] = {"history": [], "summary": {}, "metrics": {}, "artifacts": [], "files": [],
                           "config": {}, "run": None, "exit_code": None}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            out["config"].update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            for i in record.summary.update:
                out["summary"][_key(i)] = json.loads(i.value_json)
        elif kind == "metric":
            m = record.metric
            out["metrics"][m.name or m.glob_name] = m
        elif kind == "artifact":
            out["artifacts"].append(record.artifact)
        elif kind == "files":
            out["files"] += [f.path for f in record.files.files]
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)
