"""Descriptor candidate set: clustering, representatives, tag matrix, storage form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.errors import InvalidInput
from app.methods.neurons.descriptors import (
    DescriptorSet,
    cluster_descriptors,
    descriptor_set_from_embeddings,
    discover_descriptors,
    representative,
)


def unit(*angles_degrees: float) -> np.ndarray:
    """Unit vectors in the plane at the given angles: cosine distance = 1 - cos(angle difference)."""
    radians = np.deg2rad(np.asarray(angles_degrees, dtype=np.float64))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def test_cluster_descriptors_by_angle():
    # 0 and 10 degrees: distance 0.015; 90 and 100: 0.015; across: >= 0.83
    ids = cluster_descriptors(unit(0, 10, 90, 100), distance_threshold=0.1)
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    assert len(set(cluster_descriptors(unit(0, 10, 90, 100), distance_threshold=1.5).tolist())) == 1
    assert cluster_descriptors(unit(0), 0.1).tolist() == [0]
    assert cluster_descriptors(np.zeros((0, 2)), 0.1).tolist() == []


def test_rows_beyond_max_clustered_join_by_average_distance_or_are_left_out():
    ids = cluster_descriptors(unit(0, 10, 90, 100, 5, 45), distance_threshold=0.1, max_clustered=4)
    assert ids[4] == ids[0]  # 1 - mean(cos 5, cos 5) = 0.004
    assert ids[5] == -1  # 45 degrees from both clusters' members on average: ~0.23 > 0.1


def test_representative_is_closest_to_centroid_ties_by_frequency():
    names = ["a", "b", "c"]
    assert representative(unit(0, 10, 20), np.array([1, 1, 1]), names) == 1
    # 0 and 20 degrees are equally close to the 10-degree centroid: the more frequent one wins
    assert representative(unit(0, 20), np.array([1, 5]), ["x", "y"]) == 1
    assert representative(unit(0, 20), np.array([2, 2]), ["long one", "y"]) == 1  # then the shorter


def test_descriptor_set_from_hand_made_embeddings():
    per_sentence = [
        ["football", "Goal"],
        ["football match"],
        ["stock market"],
        ["stocks", "football", "stock market"],
        ["rain"],
    ]
    phrases = ["football", "football match", "goal", "stock market", "stocks", "rain"]
    embeddings = unit(0, 8, 60, 90, 95, 180)
    result = descriptor_set_from_embeddings(
        per_sentence, phrases, embeddings, {"kind": "test"}, distance_threshold=0.1, min_sentences=2
    )
    # clusters: {football, football match} in sentences 0,1,3; {stock market, stocks} in 2,3;
    # goal (1 sentence) and rain (1 sentence) are dropped by min_sentences=2; each pair of members is
    # equally close to its centroid, so the more frequent member names the cluster
    assert result.labels == ["football", "stock market"]
    assert [sorted(m) for m in result.members] == [["football", "football match"], ["stock market", "stocks"]]
    expected = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)
    np.testing.assert_array_equal(result.tags, expected)
    assert result.support.tolist() == [3, 2]
    assert result.generator == {"kind": "test"}
    assert result.params == {"distance_threshold": 0.1, "min_sentences": 2}


def test_keep_apart_phrases_never_merge():
    per_sentence = [["first person"], ["second person"], ["first person", "second person"]]
    phrases = ["first person", "second person"]
    merged = descriptor_set_from_embeddings(
        per_sentence, phrases, unit(0, 5), {}, distance_threshold=0.1, min_sentences=1, keep_apart=()
    )
    assert len(merged.labels) == 1
    apart = descriptor_set_from_embeddings(per_sentence, phrases, unit(0, 5), {}, 0.1, 1)
    assert sorted(apart.labels) == ["first person", "second person"]
    assert apart.tags.sum(axis=0).tolist() == [2, 2]


def test_descriptor_set_dict_round_trip_is_json():
    tags = np.array([[1, 0], [0, 0], [1, 1]], dtype=bool)
    original = DescriptorSet(["sports", "rain"], [["sports", "football"], ["rain"]], tags, {"kind": "x"})
    data = json.loads(json.dumps(original.to_dict()))
    assert data["tagged"] == [[0, 2], [2]]
    restored = DescriptorSet.from_dict(data)
    np.testing.assert_array_equal(restored.tags, tags)
    assert restored.labels == original.labels and restored.members == original.members
    assert restored.generator == {"kind": "x"}


def test_discover_descriptors_validates(tiny_bert):
    with pytest.raises(InvalidInput):
        discover_descriptors(tiny_bert, [["a"]], {}, distance_threshold=0)
    with pytest.raises(InvalidInput):
        discover_descriptors(tiny_bert, [["a"]], {}, min_sentences=0)
    empty = discover_descriptors(tiny_bert, [[], []], {}, min_sentences=1)
    assert empty.labels == [] and empty.tags.shape == (2, 0)


@pytest.mark.slow
def test_synonyms_merge_on_the_embedded_model(embedded):
    per_sentence = [
        ["football", "sunny"],
        ["football match"],
        ["football"],
        ["stock market"],
        ["stocks", "football"],
        ["stock market"],
    ]
    result = discover_descriptors(embedded, per_sentence, {"kind": "test"}, min_sentences=2)
    assert result.labels == ["football", "stock market"]
    assert [sorted(m) for m in result.members] == [["football", "football match"], ["stock market", "stocks"]]
    expected = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 1], [0, 1]], dtype=bool)
    np.testing.assert_array_equal(result.tags, expected)
