"""Hand-computed checks of the probe building blocks: treebank reading, gold trees, alignment, metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.stats import spearmanr

from app.errors import InvalidInput
from app.methods.probes.alignment import sentence_text, subword_groups, word_spans
from app.methods.probes.metrics import (
    GoldTree,
    MetricAccumulator,
    chain_edges,
    row_spearman,
    spanning_tree_edges_stacked,
)
from app.methods.probes.structural_probe import orient
from app.methods.probes.treebank import gold_edges, read_conllu, tree_distances
from tests.reference.probes import spanning_tree_edges, tree_depths
from tests.treebanks import write_treebank


def test_conllu_skips_ranges_and_empty_nodes(tmp_path):
    sentences = read_conllu(write_treebank(tmp_path / "t.conllu"))
    first = sentences[0]
    assert first.words == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert first.heads == [2, 3, 0, 6, 6, 3, 3]
    assert first.sent_id == "s1" and first.text == "the cat sat on the mat ."
    assert first.punctuation.tolist() == [False] * 6 + [True]
    assert len(sentences) == 8
    assert len(read_conllu(tmp_path / "t.conllu", limit=3)) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1\tword\n\n", "10 tab-separated"),
        ("1\ta\ta\tX\t_\t_\t0\troot\t_\t_\n2\tb\tb\tX\t_\t_\t0\troot\t_\t_\n\n", "one root"),
        ("1\ta\ta\tX\t_\t_\t_\troot\t_\t_\n\n", "numeric head"),
        ("\n\n", "no CoNLL-U sentences"),
    ],
)
def test_bad_treebanks_are_refused_with_a_reason(tmp_path, content, message):
    path = tmp_path / "bad.conllu"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        read_conllu(path)
    with pytest.raises(InvalidInput, match="does not exist"):
        read_conllu(tmp_path / "missing.conllu")


def test_tree_distances_and_depths_by_hand():
    # the(1)->cat(2)->sat(3, root); on(4)->mat(6); the(5)->mat(6); mat(6)->sat; .(7)->sat
    heads = [2, 3, 0, 6, 6, 3, 3]
    distances = tree_distances(heads)
    assert distances[0, 1] == 1 and distances[0, 2] == 2 and distances[0, 3] == 4 and distances[3, 4] == 2
    assert (distances == distances.T).all() and (np.diag(distances) == 0).all()
    assert tree_depths(heads).tolist() == [2, 1, 0, 2, 2, 1, 1]
    assert gold_edges(heads) == {(0, 1), (1, 2), (3, 5), (4, 5), (2, 5), (2, 6)}
    keep = np.array([True] * 6 + [False])
    assert gold_edges(heads, keep) == {(0, 1), (1, 2), (3, 5), (4, 5), (2, 5)}
    with pytest.raises(InvalidInput, match="cycle"):
        tree_distances([2, 1, 0])


def _shared_subwords(groups: list[list[int]]) -> int:
    """How many subword positions are shared by more than one word."""
    positions = [position for group in groups for position in group]
    return sum(positions.count(position) > 1 for position in set(positions))


def test_alignment_by_offsets_shares_merged_subwords():
    text, spans = sentence_text(["can", "not", "go", "."], "cannot go.")
    assert text == "cannot go." and spans == [(0, 3), (3, 6), (7, 9), (9, 10)]
    # a tokenizer that reads "cannot" as one piece: both words share it; specials are ignored
    offsets = [(0, 0), (0, 6), (7, 9), (9, 10), (0, 0)]
    special = [True, False, False, False, True]
    groups = subword_groups(offsets, special, spans)
    assert groups == [[1], [1], [2], [3]]
    assert _shared_subwords(groups) == 1
    # words missing from the text: fall back to the words joined by spaces
    assert sentence_text(["a", "b"], "x y")[0] == "a b"
    assert word_spans("ab", ["a", "c"]) is None


def test_spanning_tree_matches_scipy_and_chain_by_hand():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 12))
        points = rng.normal(size=(n, 3))
        distances = ((points[:, None] - points[None]) ** 2).sum(-1)
        reference = minimum_spanning_tree(distances).tocoo()
        expected = {(min(a, b), max(a, b)) for a, b in zip(reference.row, reference.col, strict=True)}
        assert spanning_tree_edges(distances) == expected  # the reference agrees with scipy ...
        keep = rng.random(n) < 0.7
        stacked = spanning_tree_edges_stacked(np.stack([distances, distances * 2]), keep)
        assert stacked[0] == stacked[1] == spanning_tree_edges(distances, keep)  # ... and the fast path
    assert chain_edges(np.array([True, False, True, True])) == {(0, 2), (2, 3)}


def test_row_spearman_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 9)), rng.integers(0, 4, size=(5, 9)).astype(float)
    expected = [spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)]
    assert np.allclose(row_spearman(a, b), expected)


def test_perfect_prediction_scores_one_and_chain_by_hand(tmp_path):
    sentence = read_conllu(write_treebank(tmp_path / "t.conllu"))[0]
    gold = GoldTree(sentence)
    distances = tree_distances(sentence.heads).astype(float)
    depths = tree_depths(sentence.heads).astype(float)
    accumulator = MetricAccumulator([0, 1])
    noisy = distances + np.random.default_rng(0).uniform(0, 0.2, distances.shape)
    accumulator.add(gold, np.stack([distances, (noisy + noisy.T) / 2]), np.stack([depths, depths[::-1]]))
    result = accumulator.result()
    assert result["0"] == {"uuas": 1.0, "distance_spearman": 1.0, "root_accuracy": 1.0, "depth_spearman": 1.0}
    assert result["1"]["uuas"] == 1.0 and result["1"]["root_accuracy"] == 0.0
    # non-punctuation gold edges: the-cat, cat-sat, on-mat, the-mat, mat-sat; the chain
    # the-cat, cat-sat, sat-on, on-the, the-mat gets the-cat, cat-sat and the-mat: 3 of 5
    assert accumulator.chain_uuas() == pytest.approx(3 / 5)


def test_orient_points_heads_away_from_the_root():
    assert orient({(0, 1), (1, 2), (2, 3)}, 1, 4) == [2, 0, 2, 3]
