"""Neuron <-> descriptor association: hypergeometric enrichment, BH, splits, stability, precision/recall."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import hypergeom

from app.errors import InvalidInput
from app.methods.neurons.association import (
    Association,
    NeuronAssociations,
    associate,
    association_stability,
    benjamini_hochberg,
    exemplar_counts,
    precision_recall_at_k,
    split_sentences,
)


def tag_matrix(sentences: int, carriers: list[set[int]]) -> np.ndarray:
    """[sentence, descriptor] bool with descriptor d carried by the sentences in ``carriers[d]``."""
    tags = np.zeros((sentences, len(carriers)), dtype=bool)
    for column, rows in enumerate(carriers):
        tags[sorted(rows), column] = True
    return tags


def hand_p(total: int, carriers: int, draws: int, hits: int) -> float:
    """P(X >= hits), X ~ Hypergeometric, summed term by term with exact fractions."""
    terms = (
        Fraction(math.comb(carriers, j) * math.comb(total - carriers, draws - j), math.comb(total, draws))
        for j in range(hits, min(draws, carriers) + 1)
    )
    return float(sum(terms, Fraction(0)))


# 10 sentences; d0 on 0-3 (K=4), d1 on 4-9 (K=6), d2 on none
TAGS = tag_matrix(10, [{0, 1, 2, 3}, {4, 5, 6, 7, 8, 9}, set()])


def test_counts_are_distinct_sentences_and_padding_is_ignored():
    x, n = exemplar_counts(np.array([[0, 1, 1, 5, -1], [-1, -1, -1, -1, -1]]), TAGS, np.arange(10))
    assert n.tolist() == [3, 0]  # sentences {0, 1, 5}; the second neuron is all padding
    assert x.tolist() == [[2, 1, 0], [0, 0, 0]]


def test_exemplars_outside_the_universe_are_ignored():
    x, n = exemplar_counts(np.array([[0, 1, 5, 6]]), TAGS, np.array([0, 1, 2, 3, 4]))
    assert n.tolist() == [2] and x.tolist() == [[2, 0, 0]]


def test_p_values_match_the_hand_formula_and_scipy():
    # neuron 0: n=3 distinct, x0=2 of K=4, x1=1 of K=6, N=10
    result = associate(np.array([[0, 1, 1, 5, -1]]), TAGS, alpha=1.0, min_count=1)
    by_descriptor = {a.descriptor: a for a in result.ranked[0]}
    assert set(by_descriptor) == {0, 1}  # d2 is carried by no sentence: not tested
    assert by_descriptor[0].p == pytest.approx(1 / 3)  # (C(4,2)C(6,1) + C(4,3)) / C(10,3) = 40/120
    assert by_descriptor[0].p == pytest.approx(hand_p(10, 4, 3, 2))
    assert by_descriptor[0].p == pytest.approx(hypergeom.sf(1, 10, 4, 3))
    assert by_descriptor[1].p == pytest.approx(1 - 4 / 120)  # 1 - C(4,3)/C(10,3)
    assert by_descriptor[1].p == pytest.approx(hand_p(10, 6, 3, 1))
    # BH over the m=2 tested descriptors: q0 = 1/3 * 2/1, q1 = (116/120) * 2/2
    assert by_descriptor[0].q == pytest.approx(2 / 3)
    assert by_descriptor[1].q == pytest.approx(116 / 120)
    # score = log2((x + 0.5) / (n K / N + 0.5)): expected counts 1.2 and 1.8
    assert by_descriptor[0].score == pytest.approx(math.log2(2.5 / 1.7))
    assert by_descriptor[1].score == pytest.approx(math.log2(1.5 / 2.3))
    assert [a.descriptor for a in result.ranked[0]] == [0, 1]  # ranked by p
    assert result.exemplar_counts.tolist() == [3] and result.universe_size == 10


def test_significant_enrichment_is_kept_and_weak_ones_dropped():
    tags = tag_matrix(20, [{0, 1, 2, 3}, set(range(10, 20)), {0, 10}])
    exemplars = np.array([[0, 1, 2, 3], [0, 10, -1, -1], [4, 5, 6, 7]])
    result = associate(exemplars, tags)  # alpha 0.05, min_count 2
    (only,) = result.ranked[0]
    assert only.descriptor == 0 and only.count == 4
    assert only.p == pytest.approx(1 / math.comb(20, 4))
    # all three descriptors occur in the universe, so m = 3; p0 has rank 1 (p1 = 1, p2 = 1 - 3060/4845);
    # d2 has one hit only and is dropped by min_count
    assert only.q == pytest.approx(3 / math.comb(20, 4))
    # neuron 1: d2 on 2 of 2 exemplars: p = C(2,2)/C(20,2) = 1/190 (rank 1), q = 3/190; d0, d1 have x = 1
    assert [a.descriptor for a in result.ranked[1]] == [2]
    assert result.ranked[1][0].q == pytest.approx(3 / 190)
    assert result.ranked[2] == []  # its exemplars carry nothing


def test_min_count_filters_single_hits():
    tags = tag_matrix(100, [{0}])
    assert associate(np.array([[0, 1, 2]]), tags).ranked == [[]]  # p = 3/100 but count 1 < 2
    assert associate(np.array([[0, 1, 2]]), tags, min_count=1).ranked[0][0].descriptor == 0


def test_benjamini_hochberg_by_hand():
    p = np.array([[0.01, 0.04, 0.03, 0.20], [0.5, np.nan, 0.01, np.nan]])
    q = benjamini_hochberg(p)
    # row 0: sorted 0.01, 0.03, 0.04, 0.20 -> 0.04, 0.06, 0.0533, 0.20 -> step-up min from the end
    np.testing.assert_allclose(q[0], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.20])
    # row 1: m = 2 tested: 0.01 * 2 / 1 = 0.02, 0.5 * 2 / 2 = 0.5
    np.testing.assert_allclose(q[1], [0.5, np.nan, 0.02, np.nan])


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(0)
    tags = rng.random((60, 7)) < 0.2
    tags[:10, 0] = True
    exemplars = rng.integers(-1, 60, size=(25, 8))
    exemplars[:5] = np.arange(8)  # five neurons fire on sentences 0-7, all carrying descriptor 0
    whole = associate(exemplars, tags, alpha=0.5, min_count=1)
    chunked = associate(exemplars, tags, alpha=0.5, min_count=1, chunk=4)
    assert whole.ranked == chunked.ranked
    assert all(ranked and ranked[0].descriptor == 0 for ranked in whole.ranked[:5])
    np.testing.assert_array_equal(whole.exemplar_counts, chunked.exemplar_counts)


def test_associate_validates():
    with pytest.raises(InvalidInput):
        associate(np.array([[0]]), TAGS, universe=np.array([11]))
    with pytest.raises(InvalidInput):
        associate(np.array([[0]]), TAGS, alpha=0)


def test_associations_round_trip_as_json():
    result = associate(np.array([[0, 1, 1, 5, -1]]), TAGS, alpha=1.0, min_count=1)
    restored = NeuronAssociations.from_dict(json.loads(json.dumps(result.to_dict())))
    assert restored.ranked == result.ranked and restored.universe_size == 10
    assert restored.top(1) == [[0]]


def test_split_sentences_is_deterministic_and_partitions():
    calibration, heldout = split_sentences(10, seed=3, fraction=0.3)
    assert len(calibration) == 3 and len(heldout) == 7
    assert sorted([*calibration, *heldout]) == list(range(10))
    again = split_sentences(10, seed=3, fraction=0.3)
    np.testing.assert_array_equal(again[0], calibration)
    assert not np.array_equal(split_sentences(100, seed=4)[0], split_sentences(100, seed=5)[0])
    with pytest.raises(InvalidInput):
        split_sentences(1)


def A(descriptor: int) -> Association:
    return Association(descriptor, 1.0, 2, 0.01, 0.02)


def test_association_stability_jaccard_by_hand():
    calibration = [[A(1), A(2), A(9)], [A(3)], [], [A(4)]]
    heldout = [[A(2), A(5)], [A(3)], [], []]
    jaccard = association_stability(calibration, heldout, top=2)
    # {1,2} vs {2,5}: 1/3; {3} vs {3}: 1; nothing on either side: undefined; {4} vs {}: 0
    np.testing.assert_allclose(jaccard, [1 / 3, 1.0, np.nan, 0.0])


def test_precision_recall_at_k_by_hand():
    predicted = [[1, 2, 3], [4], [], [7, 8]]
    truth = [{1, 3}, {5}, {9}, set()]
    precision, recall, evaluated = precision_recall_at_k(predicted, truth, k=2)
    # top-2: {1,2} hits 1 of 2 predictions, 1 of 2 truths; {4}: 0; [] -> recall 0, no precision term;
    # the last neuron has no true descriptor and is not evaluated
    assert precision == pytest.approx((1 / 2 + 0) / 2)
    assert recall == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert evaluated == 3
    nothing = precision_recall_at_k([[1]], [set()], k=2)
    assert math.isnan(nothing[0]) and math.isnan(nothing[1]) and nothing[2] == 0


def test_repeated_sentences_count_once_in_a_description():
    from app.methods.neurons.descriptions import _describe_view, first_occurrences

    # 40 sentences: "spam" repeated 10 times (ids 0-9) carries descriptor 0; 30 distinct others do not
    sentences = ["spam"] * 10 + [f"other {i}" for i in range(30)]
    canonical = first_occurrences(sentences)
    assert canonical[:10].tolist() == [0] * 10 and canonical[10:].tolist() == list(range(10, 40))
    tags = np.zeros((40, 2), dtype=bool)
    tags[:10, 0] = True
    tags[10:20, 1] = True  # ten distinct sentences carry descriptor 1
    # neuron 0: its exemplars are the ten copies plus five untagged others; neuron 1: ten distinct tagged
    exemplars = np.array([list(range(10)) + list(range(20, 25)), list(range(10, 20)) + [-1] * 5])
    view = _describe_view(exemplars, 0, canonical, tags, seed=0)
    assert view.full.universe_size == 31  # distinct sentences
    assert [a.descriptor for a in view.full.ranked[0]] == []  # one distinct "spam" is no evidence
    assert [a.descriptor for a in view.full.ranked[1]] == [1]
    counted = associate(exemplars, tags)  # without the mapping the copies look like ten hits
    assert [a.descriptor for a in counted.ranked[0]] == [0]
