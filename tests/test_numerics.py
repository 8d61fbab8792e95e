"""The float32 comparison helper: it accepts what summation order explains and fails on real errors."""

from __future__ import annotations

import numpy as np
import pytest

from app.methods import METHODS
from app.modeling.encoding import encode
from app.modeling.forward import clean_pass, clean_passes
from tests.numerics import (
    UNIT_ROUNDOFF_32,
    assert_float32_close,
    encoder_reduction_length,
    float32_difference_bound,
)

SENTENCES = ["the cat sat on the mat", "a dog", "the old man and the dog sat at the table for a long time"]


def test_bound_lies_between_the_typical_and_the_worst_case_error():
    u = UNIT_ROUNDOFF_32
    for n in (1, 32, 1000, 100_000):
        bound = float(float32_difference_bound(1.0, n))
        assert 2 * np.sqrt(n) * u <= bound <= 2 * n * u / (1 - n * u)
    assert float32_difference_bound(3.0, 1000) == pytest.approx(3 * float32_difference_bound(1.0, 1000))


def test_sums_in_different_orders_agree_within_the_bound():
    """The same float32 terms summed sequentially, reversed and pairwise: what differing kernels do."""
    rng = np.random.default_rng(0)
    for n in (10, 300, 3000):
        terms = rng.standard_normal((20, n)).astype(np.float32)
        forward = np.array([_sequential(row) for row in terms])
        backward = np.array([_sequential(row[::-1]) for row in terms])
        pairwise = terms.sum(axis=1)  # numpy sums float32 pairwise, in blocks
        scale = np.abs(terms.astype(np.float64)).sum(axis=1)
        assert_float32_close(backward, forward, reduction_length=n, scale=scale, err_msg="reversed")
        assert_float32_close(pairwise, forward, reduction_length=n, scale=scale, err_msg="pairwise")


def _sequential(row: np.ndarray) -> np.float32:
    total = np.float32(0.0)
    for value in row:
        total = np.float32(total + value)
    return total


@pytest.fixture(scope="module")
def batched_and_alone(tiny_bert):
    """attention_norm.raw of three inputs from one padded batch and from each input alone."""
    inputs = [encode(tiny_bert.tokenizer, text, max_tokens=64) for text in SENTENCES]
    method = METHODS["attention_norm"]
    batched = clean_passes(tiny_bert, inputs)
    pairs = [
        (
            method.from_pass(tiny_bert, together).raw,
            method.from_pass(tiny_bert, clean_pass(tiny_bert, item)).raw,
        )
        for item, together in zip(inputs, batched, strict=True)
    ]
    width = max(item.length for item in inputs)
    return pairs, encoder_reduction_length(tiny_bert.config, width) + 4 * tiny_bert.hidden_size


def test_a_padded_batch_passes(batched_and_alone):
    pairs, length = batched_and_alone
    for got, expected in pairs:
        assert_float32_close(got, expected, reduction_length=length)


def test_swapped_rows_fail(batched_and_alone):
    pairs, length = batched_and_alone
    got, expected = pairs[0]  # a padded input: got and expected differ by rounding already
    swapped = got.copy()
    swapped[:, [1, 2]] = swapped[:, [2, 1]]  # two queries' rows exchanged in every layer
    with pytest.raises(AssertionError, match="differ by more than float32 rounding"):
        assert_float32_close(swapped, expected, reduction_length=length)


@pytest.mark.parametrize("quantile", [0.5, 1.0])
def test_one_value_off_by_a_thousandth_fails(batched_and_alone, quantile):
    """1e-3 relative on the median or the largest value is far above float32 rounding (~3e-5 * scale)."""
    pairs, length = batched_and_alone
    got, expected = pairs[0]
    wrong = got.copy().reshape(-1)
    order = np.argsort(np.abs(wrong))
    index = order[int(quantile * (len(order) - 1))]
    wrong[index] *= 1 + 1e-3
    with pytest.raises(AssertionError, match="1 of"):
        assert_float32_close(wrong.reshape(got.shape), expected, reduction_length=length)


def test_another_inputs_result_fails(batched_and_alone):
    pairs, length = batched_and_alone
    (first, _), (_, second) = pairs[0], pairs[2]
    with pytest.raises(AssertionError, match="shape"):
        assert_float32_close(first, second, reduction_length=length)
    prefix = second[:, : first.shape[1], : first.shape[2]]
    with pytest.raises(AssertionError, match="differ by more than float32 rounding"):
        assert_float32_close(first, prefix, reduction_length=length)


def test_nans_must_match():
    with pytest.raises(AssertionError, match="NaN"):
        assert_float32_close([1.0, np.nan], [1.0, 2.0], reduction_length=10)
    assert_float32_close([1.0, np.nan], [1.0, np.nan], reduction_length=10)
