"""The fast paths of the neuron index against slow, obvious references.

The running top-k buffers candidates per unit and merges them in bulk with admission bounds that lag
behind; the reference sorts every token seen so far. Statistics with the maximum taken from group maxima
must equal the plain reductions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.methods.neurons.stats import HISTOGRAM_SLOTS, fold_statistics
from app.methods.neurons.topk import (
    CANDIDATE_GROUP,
    EMPTY_KEY,
    RunningTopK,
    admission_bounds,
    decode_keys,
    encode_keys,
    merge_by_unit,
    pad_groups,
    sort_keys,
    tiebreak_codes,
)


def _reference_top(values: np.ndarray, sentences: np.ndarray, positions: np.ndarray, unit: int, k: int):
    """Best k tokens of one unit by sorting: value descending, then sentence, then position."""
    order = np.lexsort((positions, sentences, -values[:, unit]))[:k]
    return values[order, unit], sentences[order], positions[order]


def _batches(seed: int, units: int, count: int, kind: str):
    generator = torch.Generator().manual_seed(seed)
    for batch in range(count):
        tokens = int(torch.randint(1, 400, (1,), generator=generator))
        if kind == "ties":  # a handful of values: ties everywhere, many more than 2k per value
            values = torch.randint(-2, 3, (tokens, units), generator=generator).float()
        elif kind == "bursts":  # rising values: many units crowded in later batches too
            values = torch.randn((tokens, units), generator=generator) + 0.5 * batch
        else:
            values = torch.randn((tokens, units), generator=generator)
        sentences = torch.randperm(tokens, generator=generator) + batch * 400  # unique: pairs stay unique
        positions = torch.randint(0, 1024, (tokens,), generator=generator)
        yield values, sentences, positions


@pytest.mark.parametrize("k", [1, 5, 50])
@pytest.mark.parametrize("kind", ["ties", "bursts", "random"])
def test_running_topk_equals_sorting(k, kind):
    units = 7
    top = RunningTopK(torch.full((units, k), EMPTY_KEY, dtype=torch.int64))
    seen = ([], [], [])
    for number, (values, sentences, positions) in enumerate(_batches(k, units, 12, kind)):
        padded = pad_groups(values)
        group_max = padded.view(-1, CANDIDATE_GROUP, units).amax(1)
        top.fold(values, tiebreak_codes(sentences, positions), padded, group_max)
        for part, array in zip(seen, (values, sentences, positions), strict=True):
            part.append(array.numpy())
        if number % 5 == 4:  # a checkpoint reads the keys mid-build; the build goes on
            _assert_top_equals_reference(top.flush().clone(), seen, k)
    _assert_top_equals_reference(top.flush(), seen, k)


def _assert_top_equals_reference(keys: torch.Tensor, seen, k: int) -> None:
    values, sentences, positions = (np.concatenate(part) for part in seen)
    top_values, top_sentences, top_positions = (t.numpy() for t in decode_keys(sort_keys(keys)))
    for unit in range(keys.shape[0]):
        expected = _reference_top(values, sentences, positions, unit, k)
        filled = len(expected[0])
        np.testing.assert_array_equal(top_values[unit, :filled], expected[0])
        np.testing.assert_array_equal(top_sentences[unit, :filled], expected[1])
        np.testing.assert_array_equal(top_positions[unit, :filled], expected[2])
        assert (top_sentences[unit, filled:] == -1).all()


def test_admission_bounds_keep_every_possible_entrant():
    generator = torch.Generator().manual_seed(3)
    k, tokens, units = 4, 203, 5
    values = torch.randn((tokens, units), generator=generator)
    values[:, 4] = 1.0  # every token tied
    threshold = torch.tensor([float("-inf"), 0.0, 2.5, 10.0, float("-inf")])
    group_max = pad_groups(values).view(-1, CANDIDATE_GROUP, units).amax(1)
    bounds, hit = admission_bounds(group_max, threshold, k)
    assert (bounds >= threshold).all()
    for unit in range(units):
        column = values[:, unit]
        kth_best = torch.sort(column, descending=True).values[k - 1]
        entrants = column >= max(float(threshold[unit]), float(kth_best))
        assert (column[entrants] >= bounds[unit]).all()  # nobody who could enter is turned away
        assert hit[unit].tolist() == (group_max[:, unit] >= bounds[unit]).tolist()
    assert int((values[:, 0] >= bounds[0]).sum()) <= k * CANDIDATE_GROUP  # crowded: at most k groups' worth


def test_merge_by_unit_with_many_tied_candidates():
    k, units = 3, 4
    keys = torch.full((units, k), EMPTY_KEY, dtype=torch.int64)
    unit_ids = torch.tensor([0] * 20 + [2] * 2 + [3] * 7)  # unit 0 is wider than 2k, unit 1 has none
    sentences = torch.arange(unit_ids.shape[0]).flip(0)
    codes = tiebreak_codes(sentences, torch.zeros_like(sentences))
    candidates = encode_keys(torch.ones(unit_ids.shape[0]), codes)
    merged = sort_keys(merge_by_unit(keys, unit_ids, candidates))
    for unit in range(units):
        mine = candidates[unit_ids == unit]
        expected = torch.sort(mine, descending=True).values[:k]
        assert merged[unit, : expected.shape[0]].tolist() == expected.tolist()
        assert (merged[unit, expected.shape[0] :] == EMPTY_KEY).all()


def test_maximum_from_group_maxima_equals_plain_statistics():
    generator = torch.Generator().manual_seed(5)
    values = torch.randn((37, 6), generator=generator) * 4
    padded = pad_groups(values)
    group_max = padded.view(-1, CANDIDATE_GROUP, 6).amax(1)
    results = []
    for groups in (None, group_max):
        state = (
            torch.zeros(6, dtype=torch.float64),
            torch.zeros(6, dtype=torch.float64),
            torch.full((6,), float("inf")),
            torch.full((6,), float("-inf")),
            torch.zeros((HISTOGRAM_SLOTS, 6), dtype=torch.int64),
        )
        scratch, slots = torch.empty_like(values), torch.empty(values.shape, dtype=torch.int32)
        fold_statistics(values, *state, scratch, slots, groups)
        results.append(state)
    for plain, fast in zip(*results, strict=True):
        assert torch.equal(plain, fast)
    assert torch.equal(results[1][3], values.amax(0))
