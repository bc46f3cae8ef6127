"""The training log line's averages: loss terms summed on the device (no host sync per step), read every
``train.log_every`` steps, over all ranks' images; the window survives a resume through the checkpoint."""

from __future__ import annotations

from typing import Any

import torch

from ablate.engine.distributed import Dist, all_reduce_mean

LOGGED = ("loss", "loss_ce", "loss_bbox", "loss_giou", "class_error")


class LossWindow:
    def __init__(self, device: torch.device, state: dict[str, Any] | None = None) -> None:
        self.device = device
        self.n = 0
        self.sums: dict[str, torch.Tensor] = {}
        if state:
            self.load_state_dict(state)

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k in LOGGED:
            value = losses[k].detach()
            self.sums[k] = self.sums[k] + value if k in self.sums else value.clone()
        self.n += 1

    def flush(self, d: Dist) -> dict[str, float]:
        """The means since the last flush (over all ranks), and an empty window."""
        keys = list(self.sums)
        totals = all_reduce_mean(torch.stack([self.sums[k] for k in keys]), d)
        means = {k: float(v) / self.n for k, v in zip(keys, totals)}
        self.sums, self.n = {}, 0
        return means

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "sums": dict(self.sums)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n = int(state["n"])
        self.sums = {k: v.to(self.device) for k, v in state["sums"].items()}
