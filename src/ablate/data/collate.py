"""Batching of variable-size images, and the sampler that makes the data order resumable."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from .threads import single_threaded


def collate(
    batch: Sequence[tuple[torch.Tensor, dict[str, Any]]],
) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
    """Zero-pad images bottom/right to the largest in the batch; ``mask`` is True on the padding."""
    images = [image for image, _ in batch]
    height = max(image.shape[-2] for image in images)
    width = max(image.shape[-1] for image in images)
    with single_threaded():
        padded = images[0].new_zeros((len(images), images[0].shape[0], height, width))
        mask = torch.ones((len(images), height, width), dtype=torch.bool)
        for i, image in enumerate(images):
            h, w = image.shape[-2:]
            padded[i, :, :h, :w] = image
            mask[i, :h, :w] = False
    return padded, mask, [target for _, target in batch]


class EpochSampler(Sampler[int]):
    """Indices in an order fixed by (seed, epoch), sharded across ranks, and resumable mid-epoch.

    Each rank takes a strided slice of one shared permutation, padded by wrapping around (as
    ``DistributedSampler`` does) so every rank yields the same count. ``set_start(k)`` skips this rank's
    first ``k`` samples of the current epoch until the next ``set_epoch``.
    """

    def __init__(
        self, size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if size <= 0:
            raise ValueError(f"EpochSampler needs a non-empty data set, got size {size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank}, world_size {world_size}")
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.num_samples = math.ceil(size / world_size)  # per rank
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.start = 0

    def set_start(self, index: int) -> None:
        if not 0 <= index <= self.num_samples:
            raise ValueError(f"start must be in [0, {self.num_samples}], got {index}")
        self.start = index

    def indices(self) -> list[int]:
        """This rank's full order for the current epoch (ignoring ``start``)."""
        if self.shuffle:
            # SeedSequence mixes (seed, epoch), so seed s at epoch e+1 does not repeat seed s+1 at epoch e.
            state = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0])
            generator = torch.Generator().manual_seed(state)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        total = self.num_samples * self.world_size
        order += (order * math.ceil(total / self.size))[: total - self.size]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = state["seed"]
        self.set_epoch(state["epoch"])
        self.set_start(state["start"])
