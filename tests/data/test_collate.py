"""Padding collate and the resumable, shardable EpochSampler."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import Dataset

from ablate.data import EpochSampler, build_loader, collate


def test_collate_pads_bottom_right_and_masks_the_padding() -> None:
    a, b = torch.rand(3, 4, 6) + 1, torch.rand(3, 5, 3) + 1
    images, mask, targets = collate([(a, {"i": 0}), (b, {"i": 1})])
    assert images.shape == (2, 3, 5, 6) and mask.shape == (2, 5, 6) and mask.dtype == torch.bool
    assert torch.equal(images[0, :, :4, :6], a) and torch.equal(images[1, :, :5, :3], b)
    assert (images[0, :, 4:] == 0).all() and (images[1, :, :, 3:] == 0).all()
    assert torch.equal(mask, images.eq(0).all(dim=1))  # True exactly where padded
    assert [t["i"] for t in targets] == [0, 1]


def test_order_is_a_function_of_seed_and_epoch() -> None:
    sampler = EpochSampler(50, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert list(EpochSampler(50, seed=3)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(EpochSampler(50, seed=4)) != first
    later = EpochSampler(50, seed=2)
    later.set_epoch(1)
    assert list(later) != first  # (seed 2, epoch 1) is not (seed 3, epoch 0)
    assert list(EpochSampler(7, shuffle=False)) == list(range(7))


@pytest.mark.parametrize(("size", "world"), [(12, 3), (10, 3), (5, 4)])
def test_ranks_get_disjoint_equal_slices(size: int, world: int) -> None:
    shards = [list(EpochSampler(size, seed=1, rank=r, world_size=world)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-size // world)
    counts = Counter(i for shard in shards for i in shard)
    assert set(counts) == set(range(size))
    assert sum(counts.values()) - size == len(shards[0]) * world - size  # only the padding repeats


def test_set_start_skips_the_first_samples_until_the_next_epoch() -> None:
    sampler = EpochSampler(20, seed=0)
    full = list(sampler)
    sampler.set_start(7)
    assert list(sampler) == full[7:] and len(sampler) == 13
    sampler.set_epoch(1)
    assert len(list(sampler)) == 20
    restored = EpochSampler(20)
    restored.load_state_dict({"seed": 0, "epoch": 0, "start": 7})
    assert list(restored) == full[7:]


class _Numbers(Dataset):
    def __len__(self) -> int:
        return 23

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        return torch.zeros(3, 2, 2), {"index": index}


def test_a_resumed_loader_continues_the_exact_order() -> None:
    loader = build_loader(_Numbers(), 4, train=True, seed=5)
    loader.sampler.set_epoch(2)
    batches = [[t["index"] for t in targets] for _, _, targets in loader]
    assert len(batches) == 5  # 23 // 4: the partial batch is dropped
    resumed = build_loader(_Numbers(), 4, train=True, seed=5)
    resumed.sampler.set_epoch(2)
    resumed.sampler.set_start(2 * 4)
    assert [[t["index"] for t in targets] for _, _, targets in resumed] == batches[2:]
    val = build_loader(_Numbers(), 4, train=False, seed=5)
    assert [t["index"] for _, _, targets in val for t in targets] == list(range(23))


def test_loading_leaves_the_thread_count_alone() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        collate([(torch.zeros(3, 2, 2), {})])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
