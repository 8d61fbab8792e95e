"""Online code length of the depth probe (Voita & Titov, EMNLP 2020): hand-computed parts, compression on
learnable and on unlearnable labels, determinism, layer batching, and a run on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.errors import InvalidInput
from app.methods.probes.description_length import (
    block_ends,
    code_bits,
    fit_probes,
    online_code_length,
    ordered_words,
)
from app.methods.probes.features import WordFeatures, compute_word_features
from app.methods.probes.treebank import TreeSentence, read_conllu
from tests.treebanks import write_treebank


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The probes here are a few hundred numbers: on a busy 2-core machine a second intra-op thread only
    adds waits (minutes instead of seconds). The results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def chain(length: int) -> TreeSentence:
    """Word i hangs from word i - 1: gold depth of word i is i."""
    return TreeSentence(words=[f"w{i}" for i in range(length)], heads=list(range(length)))


def features_of(sentences: list[TreeSentence], vectors: list[np.ndarray]) -> WordFeatures:
    return WordFeatures(sentences, [v.astype(np.float16) for v in vectors])


def one_hot_depth_features(sentences: int, length: int, classes: int, layers: int = 1) -> WordFeatures:
    """Chains whose word vectors are the one-hot of the word's depth class: the label is a function of it."""
    chains = [chain(length) for _ in range(sentences)]
    eye = np.eye(classes)[np.minimum(np.arange(length), classes - 1)]  # [word, hidden]
    return features_of(chains, [np.stack([eye] * layers) for _ in chains])


def test_block_ends_are_the_paper_fractions():
    assert block_ends(1000) == [1, 2, 4, 8, 16, 32, 62, 125, 250, 500, 1000]
    assert block_ends(69030)[:3] == [69, 138, 276] and block_ends(69030)[-2:] == [34515, 69030]
    # 0.3, 0.6 -> empty first blocks are dropped; 1.2 -> 1, 2.4 -> 2, ...
    assert block_ends(300) == [1, 2, 4, 9, 18, 37, 75, 150, 300]
    assert block_ends(5) == [1, 2, 5]
    assert block_ends(10, (0.5, 1.0)) == [5, 10]


def test_code_bits_by_hand():
    # layer 0: p(label 0 | [0, 0]) = 1/2 -> 1 bit; p(label 1 | [ln 3, 0]) = 1 / (3 + 1) -> 2 bits
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]], [[0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    bits = code_bits(logits, torch.tensor([0, 1]))
    assert bits.tolist() == pytest.approx([3.0, 2.0], abs=1e-12)
    # near-certain predictions keep their (tiny) cost instead of rounding to 0 in float32
    assert 0 < code_bits(torch.tensor([[[30.0, 0.0]]]), torch.tensor([0]))[0] < 1e-12


def test_two_blocks_uniform_part_and_probe_part_by_hand():
    # chains of 5 words, depths 0..4; max_classes 3 -> classes 0, 1, "2+" (C = 3), 60 words
    generator = np.random.default_rng(3)
    sentences = [chain(5) for _ in range(12)]
    features = features_of(sentences, [generator.normal(size=(2, 5, 6)) for _ in sentences])
    result = online_code_length(features, [0, 1], seed=4, max_classes=3, fractions=(0.5, 1.0))
    assert result["classes"] == ["0", "1", "2+"] and result["num_words"] == 60
    assert result["block_ends"] == [30, 60] and result["blocks"] == [0.5, 1.0]
    assert result["uniform_bits"] == 60 * math.log2(3)
    bits = np.array(result["block_bits"])
    assert bits[:, 0].tolist() == [30 * math.log2(3)] * 2  # the first block is sent with the uniform code
    assert result["online_bits"] == pytest.approx(bits.sum(1).tolist(), rel=1e-12)
    assert result["compression"] == pytest.approx((60 * math.log2(3) / bits.sum(1)).tolist(), rel=1e-12)
    # the second block costs -log2 p of its labels under a probe trained on the first block only
    vectors, labels, _ = ordered_words(features, [0, 1], 4, 3)
    weights, bias = fit_probes(vectors[:30], labels[:30], 3, seed=4 + 1)
    logits = np.einsum("wlh,lhc->lwc", vectors[30:].float().numpy(), weights.numpy()) + bias.numpy()[:, None]
    logits = logits.astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    by_hand = -log_p[:, np.arange(30), labels[30:].numpy()].sum(1) / math.log(2)
    assert bits[:, 1] == pytest.approx(by_hand, rel=1e-5)
    accuracy = (logits.argmax(-1) == labels[30:].numpy()).mean(1)
    assert result["final_accuracy"] == pytest.approx(accuracy.tolist())


def test_labels_determined_by_the_vectors_compress_far_below_uniform():
    # 300 words of depth classes 0, 1, 2, 3+ (C = 4), vectors = one-hot of the class. Blocks 10% / 100%:
    # uniform code 300 * 2 = 600 bits, of which the first block (30 words) always pays 60. If the probe
    # trained on those 30 words gives the right class p >= 0.8 on each later word (separable one-hot
    # classes: a linear probe learns them from a few examples), the 270 words cost <= 270 * log2(1/0.8)
    # = 87 bits, online <= 147 bits, compression >= 600 / 147 = 4.08.
    features = one_hot_depth_features(sentences=60, length=5, classes=4)
    result = online_code_length(features, [0], max_classes=4, fractions=(0.1, 1.0))
    assert result["uniform_bits"] == 600.0 and result["block_bits"][0][0] == 60.0
    assert result["block_bits"][0][1] < 87.0
    assert result["compression"][0] > 4.08
    assert result["final_accuracy"] == [1.0]
    # with the paper's 11 blocks the same labels still compress by more than 2
    paper = online_code_length(features, [0], max_classes=4)
    assert paper["block_ends"] == block_ends(300) and paper["compression"][0] > 2.0


def test_labels_independent_of_the_vectors_do_not_compress():
    # chains of 4 words: depth classes 0..3 equally frequent (C = 4), vectors Gaussian noise. No probe
    # can predict a label better than 1/4 on average (expected cost >= 2 bits per word), so the online
    # code cannot beat the uniform 2 bits/word but by chance: 2000 words, uniform 4000 bits; a 40-bit
    # win (compression 1.01) by luck has probability below 2^-40. Overfitting the small blocks costs a
    # little more than uniform, never a lot: early stopping keeps the probe near the uniform prediction.
    generator = np.random.default_rng(0)
    sentences = [chain(4) for _ in range(500)]
    features = features_of(sentences, [generator.normal(size=(1, 4, 16)) for _ in sentences])
    result = online_code_length(features, [0], max_classes=4)
    assert result["uniform_bits"] == 4000.0
    assert 0.9 < result["compression"][0] < 1.01


def test_same_seed_same_code_other_seed_other_order():
    generator = np.random.default_rng(1)
    sentences = [chain(int(n)) for n in generator.integers(2, 9, size=40)]
    depth = [np.arange(s.length)[None, :, None] for s in sentences]
    vectors = [generator.normal(size=(2, s.length, 8)) + d for s, d in zip(sentences, depth, strict=True)]
    features = features_of(sentences, vectors)
    first = online_code_length(features, [0, 1], seed=5)
    assert online_code_length(features, [0, 1], seed=5) == first
    other = online_code_length(features, [0, 1], seed=6)
    assert other["uniform_bits"] == first["uniform_bits"] and other["block_bits"] != first["block_bits"]


def test_layers_trained_together_equal_layers_trained_alone():
    # three layers that carry the depth with different noise: their probes stop at different rounds
    generator = np.random.default_rng(2)
    sentences = [chain(int(n)) for n in generator.integers(3, 10, size=60)]
    vectors = []
    for s in sentences:
        depth = np.eye(6)[np.minimum(np.arange(s.length), 5)]
        noise = generator.normal(size=(3, s.length, 6)) * np.array([0.3, 1.0, 3.0])[:, None, None]
        vectors.append(depth[None] + noise)
    features = features_of(sentences, vectors)
    together = online_code_length(features, [0, 1, 2], max_classes=6)
    for layer in [2, 0, 1]:
        alone = online_code_length(features, [layer], max_classes=6)
        row = together["layers"].index(layer)
        assert alone["block_bits"][0] == pytest.approx(together["block_bits"][row], rel=1e-5)
        assert alone["final_accuracy"][0] == pytest.approx(together["final_accuracy"][row])
    assert together["compression"][0] > together["compression"][1] > together["compression"][2]


def test_one_class_costs_nothing_and_progress_can_cancel():
    single = [TreeSentence(words=["w"], heads=[0]) for _ in range(20)]
    features = features_of(single, [np.ones((1, 1, 3)) for _ in single])
    result = online_code_length(features, [0])
    assert result["classes"] == ["0"] and result["uniform_bits"] == 0.0
    assert result["online_bits"] == [0.0] and result["compression"] == [1.0]
    one_word = online_code_length(features_of([chain(3)], [np.ones((1, 3, 2))]), [0])
    assert one_word["block_ends"] == [1, 3] and one_word["block_bits"][0][0] == math.log2(3)
    with pytest.raises(InvalidInput, match="at least one sentence"):
        online_code_length(WordFeatures([], []), [0])
    calls: list[tuple[int, int]] = []
    features = one_hot_depth_features(sentences=20, length=5, classes=4)
    online_code_length(features, [0], max_classes=4, progress=lambda step, steps: calls.append((step, steps)))
    steps = [step for step, _ in calls]
    assert steps == sorted(steps) and calls[-1][0] == calls[-1][1] and len({total for _, total in calls}) == 1

    def cancel(step: int, steps: int) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        online_code_length(features, [0], max_classes=4, progress=cancel)


def test_runs_on_word_features_of_a_tiny_model(tiny_bert, tmp_path):
    sentences = read_conllu(write_treebank(tmp_path / "t.conllu", count=40))
    features = compute_word_features(tiny_bert, sentences, max_tokens=64)
    layers = list(range(features.num_layers))
    result = online_code_length(features, layers, max_classes=4)
    words = sum(s.length for s in features.sentences)
    assert result["num_words"] == words and result["layers"] == layers
    assert result["classes"] == ["0", "1", "2", "3+"]
    assert result["uniform_bits"] == pytest.approx(words * 2.0)
    assert np.array(result["block_bits"]).shape == (len(layers), len(block_ends(words)))
    assert all(bits > 0 for bits in result["online_bits"])
