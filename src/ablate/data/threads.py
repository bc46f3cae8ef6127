"""Per-image tensor work on one thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the enclosed tensor ops on one intra-op thread, restoring the count afterwards.

    Per-image ops (resize, normalise, padding copies) are too small to gain from threads, and on a busy CPU
    every parallel region waits for a descheduled thread: on 2 shared, loaded cores the shapes loader gave
    ~100 images/s with 2 threads and ~2000/s with one. DataLoader workers are single-threaded already;
    this covers ``num_workers=0``, where loading runs in the training process.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
