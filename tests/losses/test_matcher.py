"""The Hungarian matcher against brute force, batched == per image, empty targets."""

import itertools

import pytest
import torch

from ablate.losses.matcher import HungarianMatcher


def brute_force(cost: torch.Tensor) -> float:
    q, t = cost.shape
    return min(sum(float(cost[p[j], j]) for j in range(t)) for p in itertools.permutations(range(q), t))


def random_case(seed, b=3, q=5, k=4, sizes=(2, 0, 3)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, b, q, k, generator=g)
    boxes = torch.rand(2, b, q, 4, generator=g) * 0.5 + 0.25
    targets = [{"labels": torch.randint(0, k, (n,), generator=g), "boxes": torch.rand(n, 4, generator=g) * 0.4 + 0.3}
               for n in sizes]
    return logits, boxes, targets


@pytest.mark.parametrize("focal", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_optimal_against_brute_force(seed, focal):
    matcher = HungarianMatcher(2, 5, 2, focal=focal)
    logits, boxes, targets = random_case(seed)
    indices = matcher(logits, boxes, targets)
    assert len(indices) == 2 and all(len(per_layer) == 3 for per_layer in indices)
    for layer in range(2):
        for i, t in enumerate(targets):
            q_idx, t_idx = indices[layer][i]
            assert len(q_idx) == len(t["labels"]) and len(set(q_idx.tolist())) == len(q_idx)
            if len(t["labels"]) == 0:
                continue
            labels, tb = t["labels"], t["boxes"]
            cost = matcher.cost_matrix(logits[layer : layer + 1, i : i + 1], boxes[layer : layer + 1, i : i + 1],
                                       labels, tb)[0, 0]
            got = float(cost[q_idx, t_idx].sum())
            assert got == pytest.approx(brute_force(cost), abs=1e-5)


def test_batched_equals_single_image():
    matcher = HungarianMatcher(2, 5, 2, focal=True)
    logits, boxes, targets = random_case(7)
    batched = matcher(logits, boxes, targets)
    for i, t in enumerate(targets):
        single = matcher(logits[:, i : i + 1], boxes[:, i : i + 1], [t])
        for layer in range(2):
            assert batched[layer][i][0].tolist() == single[layer][0][0].tolist()
            assert batched[layer][i][1].tolist() == single[layer][0][1].tolist()


def test_all_targets_empty():
    matcher = HungarianMatcher(1, 5, 2, focal=False)
    logits, boxes, targets = random_case(1, sizes=(0, 0, 0))
    for per_layer in matcher(logits, boxes, targets):
        assert all(len(q) == 0 and len(t) == 0 for q, t in per_layer)


def test_focal_cost_by_hand():
    matcher = HungarianMatcher(1, 0, 0, focal=True)
    logits = torch.tensor([[[[0.0, 2.0]]]])  # one query, classes 0 and 1
    cost = matcher.cost_matrix(logits, torch.full((1, 1, 1, 4), 0.5), torch.tensor([1]), torch.full((1, 4), 0.5))
    p = torch.sigmoid(torch.tensor(2.0))
    expected = 0.25 * (1 - p) ** 2 * -torch.log(p + 1e-8) - 0.75 * p**2 * -torch.log(1 - p + 1e-8)
    assert float(cost) == pytest.approx(float(expected), abs=1e-6)
