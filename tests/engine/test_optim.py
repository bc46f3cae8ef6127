"""The schedule's length and its lr drop: epochs, ``train.max_steps``, and ``train.min_epoch_steps`` for small data."""

from __future__ import annotations

import torch

from ablate.engine.config import TrainConfig
from ablate.engine.optim import build_optimizer, build_scheduler, drop_step, epoch_steps, total_steps


def test_the_default_data_keeps_its_epochs_whatever_their_number():
    for epochs, drop, total in ((20, 16, 2500), (8, 6, 1000), (1, None, 125)):
        t = TrainConfig(epochs=epochs, lr_drop=drop, min_epoch_steps=75)
        assert total_steps(t, 125) == total and epoch_steps(t, 125) == 125
    assert drop_step(TrainConfig(epochs=20, lr_drop=16, min_epoch_steps=75), 125) == 2000


def test_a_small_data_set_counts_schedule_epochs_of_min_epoch_steps():
    t = TrainConfig(epochs=20, lr_drop=16, min_epoch_steps=75)
    assert (epoch_steps(t, 19), total_steps(t, 19), drop_step(t, 19)) == (75, 1500, 1200)


def test_max_steps_cuts_the_schedule_without_moving_the_drop():
    t = TrainConfig(epochs=20, lr_drop=16, min_epoch_steps=75, max_steps=100)
    assert (total_steps(t, 19), drop_step(t, 19)) == (100, 1200)


def test_the_scheduler_drops_at_that_step():
    t = TrainConfig(epochs=2, lr_drop=1, min_epoch_steps=5, lr=1.0, warmup_steps=0)
    model = torch.nn.Linear(2, 2)
    scheduler = build_scheduler(build_optimizer(model, t), t, 3)  # 3-step data epochs counted as 5
    lrs = []
    for _ in range(total_steps(t, 3)):
        lrs.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert lrs == [1.0] * 5 + [0.1] * 5
