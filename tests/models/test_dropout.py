"""models/dropout.py: F.dropout's law (keep probability 1 − p, survivors scaled by 1/(1 − p)) and gradient."""

import pytest
import torch
import torch.nn.functional as F

from ablate.models.dropout import Dropout, dropout


def test_identity_when_off():
    x = torch.randn(5, 7)
    assert dropout(x, 0.1, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    assert Dropout(0.1).eval()(x) is x


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_rate_scale_and_gradient(p):
    torch.manual_seed(0)
    x = (torch.rand(400, 2500) + 0.5).requires_grad_()  # 1 M entries, none zero
    y = dropout(x, p, training=True)
    kept = y != 0
    n = kept.numel()
    # binomial: 1 M draws put the kept fraction within 5 standard deviations of 1 − p
    assert abs(kept.float().mean().item() - (1 - p)) <= 5 * ((p * (1 - p) / n) ** 0.5)
    torch.testing.assert_close(y[kept], x.detach()[kept] / (1 - p))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / (1 - p))  # d y / d x is the scaled mask


def test_the_global_generator_decides():
    x = torch.ones(1000, 100)
    torch.manual_seed(3)
    a, c = dropout(x, 0.1, True), dropout(x, 0.1, True)
    torch.manual_seed(3)
    assert torch.equal(a, dropout(x, 0.1, True))  # seeded runs stay reproducible, as with F.dropout
    assert not torch.equal(a, c)


def test_other_dtypes_keep_F_dropout():
    x = torch.ones(1000, 100, dtype=torch.bfloat16)
    torch.manual_seed(1)
    got = dropout(x, 0.1, True)
    torch.manual_seed(1)
    assert torch.equal(got, F.dropout(x, 0.1, True))
