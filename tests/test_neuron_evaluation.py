"""Neuron-description evaluation: rank AUROC, ground truth, exemplars, planted neurons, controls, pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app.errors import InvalidInput
from app.methods.evaluation.neuron_descriptions import (
    AG_NEWS_LABELS,
    SST2_LABELS,
    concept_tags,
    evaluate_activations,
    evaluate_neuron_descriptions,
    heldout_auroc,
    precision_over_predicted,
    predicted_concepts,
    rank_auroc,
    top_exemplars,
    true_concepts,
)
from app.methods.evaluation.texts import read_labelled
from app.methods.neurons.association import split_sentences
from app.modeling.loading import LoadedModel
from tests.conftest import SHARED_DATA


def test_rank_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=(60, 4)), 1)  # rounding makes ties
    values[:, 3] = 1.0  # a constant column: every pair tied, AUROC 1/2
    positive = np.stack([rng.random(60) < 0.3, rng.random(60) < 0.6], axis=1)
    auroc = rank_auroc(values, positive)
    assert auroc.shape == (2, 4)
    for concept in range(2):
        for unit in range(4):
            expected = roc_auc_score(positive[:, concept], values[:, unit])
            assert auroc[concept, unit] == pytest.approx(expected, abs=1e-12)


def test_rank_auroc_by_hand_and_undefined() -> None:
    values = np.array([[3.0], [1.0], [2.0], [2.0]])
    positive = np.array([[True, True], [False, True], [True, True], [False, True]])
    # positives {3, 2} vs negatives {1, 2}: pairs (3>1, 3>2, 2>1, 2=2) -> (1 + 1 + 1 + 0.5) / 4
    auroc = rank_auroc(values, positive)
    assert auroc[0, 0] == pytest.approx(3.5 / 4)
    assert np.isnan(auroc[1, 0])  # no negatives


def toy_concepts() -> tuple:
    """Dataset "topic" (A, B, C cycling, 300 sentences) and "mood" (neg, pos alternating, 300)."""
    topic = [str("ABC"[i % 3]) for i in range(300)]
    mood = [str(i % 2) for i in range(300)]
    datasets = [
        ("topic", [f"t{i}" for i in range(300)], topic),
        ("mood", [f"m{i}" for i in range(300)], mood),
    ]
    return concept_tags(datasets, {"mood": {"0": "neg", "1": "pos"}})


def test_concept_tags_pool_and_name() -> None:
    concepts = toy_concepts()
    assert concepts.concepts == ["topic:A", "topic:B", "topic:C", "mood:neg", "mood:pos"]
    assert concepts.tags.shape == (600, 5) and (concepts.tags.sum(axis=1) == 1).all()
    assert concepts.tags[0, 0] and concepts.tags[301, 4]
    assert concepts.concept_dataset.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(InvalidInput):
        concept_tags([("x", ["a", "b"], ["1", "1"])])
    with pytest.raises(InvalidInput):
        concept_tags([("x", ["a", "b"], ["0", "1"]), ("x", ["c", "d"], ["0", "1"])])


def test_auroc_stays_within_the_concepts_dataset() -> None:
    concepts = toy_concepts()
    values = np.zeros((600, 1))
    values[300:, 0] = 5.0  # fires on every "mood" sentence: says nothing about neg vs pos
    auroc = heldout_auroc(values, concepts, np.arange(600))
    assert auroc[:, 0] == pytest.approx([0.5] * 5)  # pooled, "topic" vs "mood" would look separable
    assert true_concepts(auroc) == [set()]


def test_true_concepts_threshold_and_nan() -> None:
    auroc = np.array([[0.75, 0.2, np.nan], [0.9, 0.74, 0.8]])  # [concept, unit]
    assert true_concepts(auroc, 0.75) == [{0, 1}, set(), {1}]


def test_precision_over_predicted_counts_units_without_truth() -> None:
    predicted, truth = [[0], [1, 2], [], [3, 1]], [{0}, set(), {1}, {1}]
    assert precision_over_predicted(predicted, truth, 2) == pytest.approx((1 + 0 + 0.5) / 3)
    assert precision_over_predicted(predicted, truth, 1) == pytest.approx((1 + 0 + 0) / 3)
    assert np.isnan(precision_over_predicted([[]], [{0}], 2))


def test_top_exemplars_order() -> None:
    values = np.array([[1.0, 9.0], [5.0, 0.0], [3.0, 4.0], [4.0, 8.0]])
    assert top_exemplars(values, 2).tolist() == [[1, 3], [0, 3]]
    with pytest.raises(InvalidInput):
        top_exemplars(values, 5)


def planted_activations(concepts, seed: int = 0) -> np.ndarray:
    """[sentence, 1 layer, 3 units]: unit 0 fires exactly on topic:A, unit 1 random, unit 2 on mood:pos."""
    rng = np.random.default_rng(seed)
    activations = np.zeros((len(concepts.texts), 1, 3), dtype=np.float32)
    activations[:, 0, 0] = concepts.tags[:, 0]
    activations[:, 0, 1] = rng.normal(size=len(concepts.texts))
    activations[:, 0, 2] = concepts.tags[:, 4] * rng.uniform(1, 2, len(concepts.texts))
    return activations


def test_planted_neurons_truth_prediction_and_metrics() -> None:
    concepts = toy_concepts()
    result = evaluate_activations(planted_activations(concepts), concepts, exemplars=20, top=2, directions=0)
    assert result.neurons.truth == [{0}, set(), {4}]
    assert result.neurons.auroc[0, 0] == 1.0 and result.neurons.auroc[3, 0] == 0.5  # ties: exactly 1/2
    assert result.neurons.predicted[0][:2] == [0] and result.neurons.predicted[2][:2] == [4]
    summary = result.summary()
    metrics = summary["metrics"]
    assert (metrics["precision"], metrics["recall"], metrics["evaluated"]) == (1.0, 1.0, 2)
    assert metrics["fraction_with_truth"] == pytest.approx(2 / 3)
    assert (
        metrics["per_dataset"]["topic"]["evaluated"] == 1 and metrics["per_dataset"]["topic"]["recall"] == 1
    )
    assert summary["per_concept"]["topic:A"] == {"true": 1, "predicted": 1}
    # swapped among the two evaluated neurons, predictions never match: 0 whenever the shuffle swaps
    assert summary["control"]["permutation"]["2"]["precision"] < 1.0
    assert "random_directions" not in summary["control"]
    json.dumps(summary, allow_nan=False)
    table = result.table()
    assert all(len(row) == len(table["columns"]) for row in table["rows"])


def test_predictions_ignore_the_heldout_half() -> None:
    concepts = toy_concepts()
    activations = planted_activations(concepts).reshape(600, -1)
    calibration, heldout = split_sentences(600, 0)
    first = predicted_concepts(activations, concepts.tags, calibration, 20)
    scrambled, tags = activations.copy(), concepts.tags.copy()
    scrambled[heldout] = np.random.default_rng(1).normal(size=(len(heldout), 3)) * 100
    tags[heldout] = tags[heldout][::-1]
    assert predicted_concepts(scrambled, tags, calibration, 20) == first


def test_random_direction_control_runs_and_drops_empty_sentences() -> None:
    concepts = toy_concepts()
    activations = planted_activations(concepts)
    activations[5] = np.nan  # a sentence without any non-special token
    result = evaluate_activations(activations, concepts, exemplars=20, directions=4)
    assert result.counts["dropped_sentences"] == 1 and result.counts["sentences"] == 599
    assert len(result.random.truth) == 4
    summary = result.summary()
    assert set(summary["control"]["random_directions"]["at_k"]) == {"1", "2", "3"}
    json.dumps(summary, allow_nan=False)


def test_invalid_parameters() -> None:
    concepts = toy_concepts()
    with pytest.raises(InvalidInput):
        evaluate_activations(planted_activations(concepts), concepts, threshold=0.4)
    with pytest.raises(InvalidInput):
        evaluate_activations(planted_activations(concepts)[:10], concepts)


def test_pipeline_on_tiny_bert(tiny_bert: LoadedModel) -> None:
    animals = ["the cat sat on the mat", "a cat was on the table", "the dog sat", "a dog is big"] * 6
    films = ["this movie is good", "a great movie", "a bad movie", "this movie is not good"] * 6
    datasets = [
        ("animals", animals, ["cat", "cat", "dog", "dog"] * 6),
        ("films", films, ["1", "1", "0", "0"] * 6),
    ]
    result = evaluate_neuron_descriptions(
        tiny_bert, datasets, label_names={"films": SST2_LABELS}, exemplars=5, directions=8
    )
    summary = result.summary()
    assert summary["counts"]["neurons"] == 2 * 37 and summary["counts"]["sentences"] == 48
    assert summary["concepts"] == ["animals:cat", "animals:dog", "films:negative", "films:positive"]
    assert len(result.random.truth) == 2 * 8
    assert 0 <= summary["metrics"]["fraction_with_truth"] <= 1
    assert summary["params"]["model"] == tiny_bert.name and summary["seconds"]["activations"] >= 0
    json.dumps(summary, allow_nan=False)


@pytest.mark.slow
def test_embedded_on_shared_data(embedded: LoadedModel) -> None:
    ag, sst = SHARED_DATA / "ag-news" / "test.tsv", SHARED_DATA / "sst2" / "dev.tsv"
    if not ag.is_file() or not sst.is_file():
        pytest.skip("../shared/data (AG News, SST-2) is not present")
    datasets = [
        ("ag_news", *read_labelled(ag, text_column="text", limit=200)),
        ("sst2", *read_labelled(sst, limit=200)),
    ]
    labels = {"ag_news": AG_NEWS_LABELS, "sst2": SST2_LABELS}
    summary = evaluate_neuron_descriptions(embedded, datasets, label_names=labels, directions=64).summary()
    assert summary["counts"]["neurons"] == 6 * 1536
    assert summary["metrics"]["evaluated"] > 0
