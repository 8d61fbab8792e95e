"""The tree topological probe's pseudo-label operator: vectorised form equals the plain loop."""

from __future__ import annotations

import random

import pytest
import torch

from app.methods.probes.topological import TopologicalCurves, pseudo_depths
from tests.reference.topological import pseudo_depths_loop


@pytest.mark.parametrize(
    ("predicted", "labels"),
    [
        ([0.1, 0.2, 0.3], [1, 2, 2]),  # 0.3: |0.3 - 2| < |3 - 0.3| -> same as previous
        ([0.0, 5.0, 2.6, 3.4], [1, 4, 2, 3]),  # sorted 0, 2.6, 3.4, 5 -> 1, 2, 3 (3.4 nearer 3), 4
        ([3.0, 2.5, 1.0], [3, 2, 1]),  # sorted 1, 2.5, 3: 2.5 second -> 2; 3.0 vs 2 or 3 -> 3
        ([1.0, 1.0, 2.5], [1, 2, 3]),  # exact tie between 2 and 3 goes to + 1
        ([7.0], [1]),
    ],
)
def test_operator_by_hand(predicted, labels):
    assert pseudo_depths_loop(predicted) == labels
    x = torch.tensor([predicted])
    assert pseudo_depths(x, torch.ones_like(x, dtype=torch.bool))[0].long().tolist() == labels


def test_vectorised_operator_equals_loop_on_random_padded_batches():
    rng = random.Random(0)
    for _ in range(300):
        rows, width = rng.randint(1, 5), rng.randint(1, 14)
        lengths = [rng.randint(1, width) for _ in range(rows)]
        values = [
            [round(rng.uniform(-3, 9), rng.choice([0, 1, 3])) for _ in range(width)] for _ in range(rows)
        ]
        x = torch.tensor(values, dtype=torch.float32)
        mask = torch.tensor([[i < n for i in range(width)] for n in lengths])
        ssp = pseudo_depths(x, mask)
        essp = pseudo_depths(x, mask, reverse=True)
        for row, n in enumerate(lengths):
            expected = pseudo_depths_loop(x[row, :n].tolist())
            assert ssp[row, :n].long().tolist() == expected
            assert ssp[row, n:].abs().sum() == 0 and essp[row, n:].abs().sum() == 0
            order = sorted(range(n), key=lambda i: x[row, i].item())
            sorted_labels = [expected[i] for i in order]
            reversed_expected = [0] * n
            for rank, index in enumerate(order):
                reversed_expected[index] = sorted_labels[n - 1 - rank]
            assert essp[row, :n].long().tolist() == reversed_expected


def test_labels_carry_no_gradient():
    x = torch.tensor([[0.3, 2.0, 1.1]], requires_grad=True)
    assert not pseudo_depths(x, torch.ones(1, 3, dtype=torch.bool)).requires_grad


def test_bracket_check():
    curves = TopologicalCurves([0, 1], [0], {"sp": [[1.0, 1.0]], "ssp": [[0.5, 1.5]], "essp": [[2.0, 2.0]]})
    assert curves.bracket_holds() == [True, False]


def test_tensor_loop_reference_agrees():
    from tests.reference.topological import pseudo_depths_tensor_loop

    x = torch.rand(2, 3, 9) * 6
    mask = torch.arange(9)[None, None, :] < torch.tensor([[9, 4, 1], [2, 7, 5]])[..., None]
    for reverse in (False, True):
        assert torch.equal(
            pseudo_depths(x, mask, reverse=reverse), pseudo_depths_tensor_loop(x, mask, reverse)
        )
