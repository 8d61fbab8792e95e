"""Structural probe training recovers a planted tree geometry; the whole pipeline runs on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from app.methods.probes.batches import make_batches
from app.methods.probes.features import WordFeatures, compute_word_features
from app.methods.probes.pipeline import TrainOptions, train_probe_set
from app.methods.probes.probe_maps import train_structural_probes
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.treebank import read_conllu
from app.modeling.hooks import leftover_hooks
from tests.treebanks import write_treebank


def planted_features(sentences, hidden: int = 24, seed: int = 0) -> WordFeatures:
    """Layer 1 holds vectors whose squared distances are exactly the tree distances (each word = sum of
    orthogonal edge vectors on its path to the root, rotated); layer 0 is noise."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(hidden, hidden)))
    vectors = []
    for sentence in sentences:
        n = sentence.length
        paths = np.zeros((n, hidden))
        for word in range(n):
            node = word
            while sentence.heads[node] != 0:
                paths[word, node] = 1.0  # edge (node -> its head) is axis ``node``
                node = sentence.heads[node] - 1
        layer_one = paths @ rotation
        vectors.append(np.stack([rng.normal(size=(n, hidden)), layer_one]).astype(np.float16))
    return WordFeatures(list(sentences), vectors)


def test_probe_recovers_a_planted_tree_geometry(tmp_path):
    sentences = read_conllu(write_treebank(tmp_path / "t.conllu", count=40, extras=False))
    features = planted_features(sentences)
    weights = train_structural_probes(
        make_batches(features, 8), make_batches(features, 8), [0, 1], 24, rank=24, max_epochs=60
    )
    report = evaluate_probes(features, weights)
    assert report["layers"]["1"]["uuas"] == pytest.approx(1.0)
    assert report["layers"]["1"]["distance_spearman"] > 0.95
    assert report["layers"]["1"]["root_accuracy"] == pytest.approx(1.0)
    assert report["layers"]["0"]["uuas"] < 0.8  # noise does not encode the tree
    assert weights.history["best_dev_distance"][1] < weights.history["best_dev_distance"][0]


def test_pipeline_on_a_tiny_model(tiny_bert, tmp_path):
    train = read_conllu(write_treebank(tmp_path / "train.conllu", count=24))
    dev = read_conllu(write_treebank(tmp_path / "dev.conllu"))
    seen: list[tuple[int, int]] = []
    trained = train_probe_set(
        tiny_bert,
        train,
        dev,
        TrainOptions(rank=8, max_epochs=2, topological_epochs=1, control=True),
        max_tokens=64,
        progress=lambda done, total: seen.append((done, total)),
    )
    layers = tiny_bert.num_layers + 1
    assert trained.weights.layers == list(range(layers))
    assert trained.weights.distance.shape == (layers, 8, tiny_bert.hidden_size)
    metrics = trained.metrics
    assert set(metrics["layers"]) == {str(layer) for layer in range(layers)}
    assert set(metrics["control"]["layers"]) == set(metrics["layers"])
    assert 0 <= metrics["baselines"]["right_branching_uuas"] <= 1
    assert len(metrics["topological"]["x_ssp"]) == layers
    assert metrics["train_sentences"] == {"used": 24, "skipped": 0, "skipped_reasons": {}}
    assert seen[-1] == (1000, 1000) and all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert leftover_hooks(tiny_bert.model) == []


def test_unalignable_sentences_are_counted(tiny_bert, tmp_path):
    sentences = read_conllu(write_treebank(tmp_path / "t.conllu"))
    features = compute_word_features(tiny_bert, sentences, max_tokens=8)  # the long sentences do not fit
    report = features.report()
    assert report["used"] + report["skipped"] == len(sentences)
    assert report["skipped_reasons"] == {"too many subwords": report["skipped"]} and report["skipped"] > 0


def test_figures_over_seeds_are_means_with_spread_and_repeatable(tiny_bert, tmp_path):
    """Three seeds: ``layers`` is the mean of ``per_seed``, ``layers_std`` their sample spread, the stored
    probes are the first seed's; the same seeds give the same numbers; a second treebank is measured too."""
    train = read_conllu(write_treebank(tmp_path / "train.conllu", count=24))
    dev = read_conllu(write_treebank(tmp_path / "dev.conllu"))
    second = read_conllu(write_treebank(tmp_path / "second.conllu", count=12, extras=False))
    options = TrainOptions(rank=8, max_epochs=2, topological=False, seed=5, seeds=3, selectivity=True)

    def run():
        return train_probe_set(tiny_bert, train, dev, options, max_tokens=64, second=second)

    first, again = run(), run()
    metrics = first.metrics
    assert metrics["seeds"] == [5, 6, 7] and len(metrics["per_seed"]) == 3
    for layer, values in metrics["layers"].items():
        seeds = [run[layer]["uuas"] for run in metrics["per_seed"]]
        assert values["uuas"] == pytest.approx(np.mean(seeds))
        assert metrics["layers_std"][layer]["uuas"] == pytest.approx(np.std(seeds, ddof=1))
    assert metrics["stored_probes"] == metrics["per_seed"][0]
    assert len({tuple(run["1"].values()) for run in metrics["per_seed"]}) > 1  # the seeds differ
    assert metrics["second"]["sentences"]["used"] == 12 and set(metrics["second"]["layers"]) == set(
        metrics["layers"]
    )
    assert metrics["per_seed"] == again.metrics["per_seed"]
    assert metrics["second"]["per_seed"] == again.metrics["second"]["per_seed"]
    np.testing.assert_array_equal(first.weights.distance, again.weights.distance)
    chosen = metrics["selectivity"]
    assert chosen["seeds"] == [5, 6, 7] and chosen["per_seed"] == again.metrics["selectivity"]["per_seed"]
    for number, seed_values in enumerate(chosen["per_seed"]):
        real, control = metrics["per_seed"][number], chosen["control"]["per_seed"][number]
        for layer, values in seed_values.items():
            assert values["uuas"] == pytest.approx(real[layer]["uuas"] - control[layer]["uuas"])
