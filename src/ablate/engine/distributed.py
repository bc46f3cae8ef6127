"""torchrun / DDP set-up. A plain ``python -m ablate`` is world size 1 and touches none of this.

Ranks come from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR/PORT``) or, in a
submitit job with several tasks (``hydra.launcher.tasks_per_node=N``), from SLURM's, exported the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owner: bool = False  # this call created the process group, so ``cleanup`` of this Dist destroys it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def backend() -> str:
    """One group for both devices: gloo carries CPU tensors and object collectives, nccl CUDA tensors,
    so ``train.device=cpu`` works on a GPU node and object gathers never need a CUDA device set."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def export_submitit_env() -> None:
    """In a submitit job with several tasks, export torch's ``env://`` variables from SLURM's (else a no-op)."""
    if "WORLD_SIZE" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    from submitit.helpers import TorchDistributedEnvironment

    env = TorchDistributedEnvironment()
    if env.world_size > 1:
        # keep every GPU visible: the trainer picks cuda:LOCAL_RANK itself
        env.export(set_cuda_visible_devices=False, overwrite=True)


def init_distributed() -> Dist:
    """Join the process group the environment describes (reusing one already joined, e.g. by ``main``); the
    group serves both CPU and CUDA (``backend``)."""
    export_submitit_env()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    owner = not dist.is_initialized()
    if owner:
        dist.init_process_group(backend=backend())
    return Dist(rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                world_size=dist.get_world_size(), owner=owner)


def all_reduce_mean(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= d.world_size
    return value


def all_reduce_sum(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        value = value.clone()
        dist.all_reduce(value)
    return value


def gather_to_main(obj: object, d: Dist) -> list:
    """Every rank's ``obj`` in rank order on rank 0, ``[]`` elsewhere (no copy of everything on every rank)."""
    if not d.enabled:
        return [obj]
    out: list | None = [None] * d.world_size if d.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out or []


def broadcast_object(obj: object, d: Dist) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(model: nn.Module, d: Dist) -> None:
    """Rank 0's buffers (BatchNorm running stats) everywhere: each rank's last training forward updated its own
    copy, and evaluation must score every image with the one model that the checkpoint holds."""
    if d.enabled:
        for buf in model.buffers():
            dist.broadcast(buf.data, src=0)


def cleanup(d: Dist) -> None:
    if d.owner and dist.is_initialized():
        dist.destroy_process_group()
