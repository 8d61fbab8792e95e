"""The compiled CPU fold of the neuron index: hand-computed answers, and equality with the torch path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.methods.neurons.fold_cpu import fold_layer, heapify
from app.methods.neurons.stats import HISTOGRAM_SLOTS, fold_statistics
from app.methods.neurons.topk import (
    CANDIDATE_GROUP,
    EMPTY_KEY,
    RunningTopK,
    decode_keys,
    pad_groups,
    sort_keys,
    tiebreak_codes,
)


class _State:
    """A layer's state as the index keeps it on the CPU, empty."""

    def __init__(self, units: int, k: int) -> None:
        self.total = torch.zeros(units, dtype=torch.float64)
        self.total_squares = torch.zeros(units, dtype=torch.float64)
        self.minimum = torch.full((units,), float("inf"))
        self.maximum = torch.full((units,), float("-inf"))
        self.histogram = torch.zeros((HISTOGRAM_SLOTS, units), dtype=torch.int64)
        self.heap = torch.full((units, k), EMPTY_KEY, dtype=torch.int64)
        self.bound = self.heap[:, 0] >> 32

    def fold(self, activations: torch.Tensor, rows: torch.Tensor, codes: torch.Tensor) -> None:
        fold_layer(
            activations,
            rows,
            codes,
            self.total,
            self.total_squares,
            self.minimum,
            self.maximum,
            self.histogram,
            self.heap,
            self.bound,
        )

    def top(self) -> tuple[list, list, list]:
        values, sentences, positions = decode_keys(sort_keys(self.heap))
        return values.tolist(), sentences.tolist(), positions.tolist()


def test_one_batch_by_hand():
    # rows: 0 and 2 are tokens of sentence 0 (positions 1 and 3), 3 is sentence 1 position 1;
    # row 1 is a special token, never counted, whatever its activations
    activations = torch.tensor(
        [
            [0.5, -0.0, -1.0],
            [100.0, 100.0, 100.0],
            [0.5, 0.0, 0.125],
            [-0.2, 9.0, 0.0],
        ]
    )
    rows = torch.tensor([0, 2, 3])
    codes = tiebreak_codes(torch.tensor([0, 0, 1]), torch.tensor([1, 3, 1]))
    state = _State(units=3, k=2)
    state.fold(activations, rows, codes)

    np.testing.assert_allclose(state.total.numpy(), [0.8, 9.0, -0.875], rtol=1e-7)
    np.testing.assert_allclose(state.total_squares.numpy(), [0.54, 81.0, 1.015625], rtol=1e-7)
    assert state.minimum.tolist() == pytest.approx([-0.2, 0.0, -1.0])
    assert state.maximum.tolist() == pytest.approx([0.5, 9.0, 0.125])
    # slot 0 underflow (< -0.5), slot 1 + floor(x / 0.125) + 4 for [-0.5, 8.0), slot 69 overflow (>= 8.0)
    expected = np.zeros((HISTOGRAM_SLOTS, 3), dtype=np.int64)
    expected[9, 0] = 2  # 0.5 -> [0.5, 0.625)
    expected[3, 0] = 1  # -0.2 -> [-0.25, -0.125)
    expected[5, 1] = 2  # -0.0 and 0.0 -> [0, 0.125)
    expected[69, 1] = 1  # 9.0 overflows
    expected[0, 2] = 1  # -1.0 underflows
    expected[6, 2] = 1  # 0.125 -> [0.125, 0.25)
    expected[5, 2] = 1
    np.testing.assert_array_equal(state.histogram.numpy(), expected)

    values, sentences, positions = state.top()
    assert values[0] == [0.5, 0.5] and sentences[0] == [0, 0] and positions[0] == [1, 3]  # tie: position
    # -0.0 ranks as 0.0, so it ties with the 0.0 at position 3 and wins on its lower position
    assert values[1] == [9.0, 0.0] and sentences[1] == [1, 0] and positions[1] == [1, 1]
    assert values[2] == [0.125, 0.0] and sentences[2] == [0, 1] and positions[2] == [3, 1]
    assert state.bound.tolist() == (state.heap.min(1).values >> 32).tolist()


def test_a_nan_activation_never_indexes_out_of_range():
    state = _State(units=2, k=1)
    activations = torch.tensor([[float("nan"), 1.0], [float("inf"), float("-inf")]])
    state.fold(activations, torch.tensor([0, 1]), tiebreak_codes(torch.tensor([0, 0]), torch.tensor([1, 2])))
    assert state.histogram.sum(0).tolist() == [2, 2]
    # NaN (unit 0) and -inf (unit 1) in the underflow slot, +inf in the overflow, 1.0 in [1.0, 1.125)
    assert state.histogram[0].tolist() == [1, 1] and state.histogram[-1].tolist() == [1, 0]
    assert state.histogram[13, 1] == 1


def test_heapify_makes_min_heaps():
    generator = torch.Generator().manual_seed(0)
    heap = torch.randint(-1000, 1000, (20, 13), generator=generator)
    original = heap.clone()
    heapify(heap.numpy())
    assert torch.equal(heap.sort(1).values, original.sort(1).values)
    for child in range(1, 13):
        assert bool((heap[:, (child - 1) // 2] <= heap[:, child]).all())


def _torch_path(batches, units: int, k: int, keys: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same batches through the torch path that GPUs take."""
    state = _State(units, k)
    top = RunningTopK(keys.clone())
    for activations, rows, codes in batches:
        values = activations.index_select(0, rows)
        padded = pad_groups(values)
        group_max = padded.view(-1, CANDIDATE_GROUP, units).amax(1)
        fold_statistics(
            values,
            state.total,
            state.total_squares,
            state.minimum,
            state.maximum,
            state.histogram,
            torch.empty_like(values),
            torch.empty(values.shape, dtype=torch.int64),
            group_max,
        )
        top.fold(values, codes, padded, group_max)
    state.heap = top.flush()
    return vars(state)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_equals_the_torch_path(ties, threads):
    """Random batches (and a resumed top-k) give the same exemplars, counts and extremes either way."""
    generator = torch.Generator().manual_seed(1)
    units, k, width = 150, 7, 40
    batches = []
    for number in range(5):
        activations = torch.randn(3 * width, units, generator=generator) * 1.5 - 0.3
        if ties:
            activations = (activations * 4).round() / 4  # many exact ties, broken by sentence and position
        activations[0, :10] = -0.0
        rows = torch.randperm(3 * width, generator=generator)[: 2 * width].sort().values
        codes = tiebreak_codes(number * 3 + rows // width, rows % width)
        batches.append((activations, rows, codes))
    # resume from a partly filled top-k, in no particular order
    keys = torch.full((units, k), EMPTY_KEY, dtype=torch.int64)
    start = tiebreak_codes(torch.tensor([100]), torch.tensor([5]))
    keys[::2, 1] = (torch.randint(-(2**30), 2**30, (units // 2,), generator=generator) << 32) | start

    compiled = _State(units, k)
    compiled.heap = keys.clone()
    heapify(compiled.heap.numpy())
    compiled.bound = compiled.heap[:, 0] >> 32
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for batch in batches:
            compiled.fold(*batch)
    finally:
        torch.set_num_threads(before)
    reference = _torch_path(batches, units, k, keys)

    assert torch.equal(sort_keys(compiled.heap), sort_keys(reference["heap"]))
    for name in ("minimum", "maximum", "histogram"):
        assert torch.equal(getattr(compiled, name), reference[name]), name
    torch.testing.assert_close(compiled.total, reference["total"], rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(compiled.total_squares, reference["total_squares"], rtol=1e-6, atol=1e-4)
