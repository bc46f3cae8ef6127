"""The machine a job ran on, as result.json records it: wall times mean little without the CPU that made them."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name with its family and model numbers (a VM may only say "Intel(R) Xeon(R) Processor",
    which names no generation); ``platform.processor()`` where /proc/cpuinfo is absent (macOS, Windows)."""
    try:
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first CPU's entry
        return f"{fields['model name']} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')})"
    except (OSError, KeyError):
        return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """``{"cpu", "cores", "gpu"}``: the CPU model, the cores this process may use, the CUDA device's name or None."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": cores, "gpu": gpu}
