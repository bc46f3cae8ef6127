import torch

from ablate.models.attention import attend, attention_map, padding_bias


def test_sdpa_and_explicit_paths_agree():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 4, 7, 16, generator=g), torch.randn(2, 4, 9, 16, generator=g)
    v = torch.randn(2, 4, 9, 8, generator=g)  # value width differs from q/k (the conditional attention)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1, 6:] = True
    bias = padding_bias(mask, q.dtype)
    fast, none = attend(q, k, v, bias, 0.0, need_weights=False)
    slow, w = attend(q, k, v, bias, 0.0, need_weights=True)
    assert none is None
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=0)
    assert w[1, ..., 6:].abs().max() == 0
    # the explicit weights are softmax(q kᵀ / √E) by hand
    by_hand = (q @ k.transpose(-2, -1) / 4.0 + bias).softmax(-1)
    torch.testing.assert_close(w, by_hand)
    torch.testing.assert_close(attention_map(q, k, bias, 0.25), by_hand)


def test_no_padding_gives_no_bias():
    assert padding_bias(torch.zeros(2, 5, dtype=torch.bool), torch.float32) is None
