"""bf16 autocast on CPU (the branch a GPU user takes on CUDA): every spatial-query form × focal × offset trains a
step with finite losses and gradients, the forward really runs in bf16, and the loss side stays fp32."""

import itertools

import pytest
import torch

from ablate.engine.config import TrainConfig
from ablate.engine.distributed import Dist
from ablate.engine.optim import build_optimizer, build_scheduler
from ablate.engine.precision import Precision, autocast, to_fp32
from ablate.engine.train import Trainer, train_step
from ablate.losses import LossConfig, build_criterion
from ablate.models.detector import batch_images
from ablate.models.spatial_query import SPATIAL_QUERIES
from tests.models.helpers import toy, toy_images, toy_targets

GRID = list(itertools.product(SPATIAL_QUERIES.names(), [True, False], [True, False]))


def _trainer(model: torch.nn.Module, focal: bool, precision: Precision) -> Trainer:
    settings = TrainConfig(lr=1e-3, lr_backbone=1e-3, warmup_steps=0, precision=precision)
    optimizer = build_optimizer(model, settings)
    return Trainer(model, model, build_criterion(LossConfig(), num_classes=4, focal=focal), optimizer,
                   build_scheduler(optimizer, settings, 1), loader=None, device=torch.device("cpu"), dist=Dist(),
                   settings=settings, total_steps=1)


@pytest.mark.parametrize("csq,focal,offset", GRID)
def test_bf16_train_step_of_every_variant(csq, focal, offset):
    model = toy(csq=csq, focal=focal, offset=offset)
    dtypes: set[torch.dtype] = set()
    model.class_embed.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    images, mask = batch_images(toy_images(), None)
    losses, stop = train_step(_trainer(model, focal, Precision.bf16), (images, mask, toy_targets()), 0, False)
    assert dtypes == {torch.bfloat16}  # the forward ran under autocast
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed and not stop


def test_fp32_is_the_authors_precision():
    assert TrainConfig().precision is Precision.fp32
    model = toy()
    with autocast(torch.device("cpu"), Precision.fp32):
        out = model(toy_images())
    assert out["pred_logits"].dtype == torch.float32


def test_to_fp32_casts_nested_outputs_and_keeps_integers():
    out = to_fp32({"a": torch.ones(2, dtype=torch.bfloat16), "b": [{"c": torch.ones(1, dtype=torch.bfloat16)}],
                   "i": torch.ones(1, dtype=torch.long), "n": None})
    assert out["a"].dtype == out["b"][0]["c"].dtype == torch.float32
    assert out["i"].dtype == torch.long and out["n"] is None
