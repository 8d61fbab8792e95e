"""The structural-probe control task (Hewitt & Liang, EMNLP 2019): type-assigned trees, valid and learnable
only from word types; selectivity is real minus control."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.errors import InvalidInput
from app.methods.probes.batches import make_batches
from app.methods.probes.control_task import (
    ANCHOR,
    FIRST,
    LAST,
    ROOT,
    ControlTask,
    anchors,
    control_features,
    control_heads,
    depth_one_share,
    selectivity,
)
from app.methods.probes.features import WordFeatures
from app.methods.probes.probe_maps import train_structural_probes
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.treebank import TreeSentence, read_conllu, tree_distances
from tests.treebanks import write_treebank

EWT_DEV = Path(__file__).resolve().parents[2] / "shared/data/ud-english-ewt/en_ewt-ud-dev.conllu"


def random_sentences(
    count: int, vocabulary: int, seed: int, punctuation: float = 0.15, *, distinct: bool = False
) -> list[TreeSentence]:
    """Sentences of 1-12 made-up words (mixed case), some punctuation; their own heads are a right chain.
    ``distinct``: no word type twice in a sentence."""
    rng = np.random.default_rng(seed)
    sentences = []
    for number in range(count):
        length = int(rng.integers(1, 13))
        words, upos = [], []
        order = rng.permutation(vocabulary) if distinct else rng.integers(vocabulary, size=length)
        marks = rng.permutation([".", ",", '"', "!"]) if distinct else rng.choice([".", ",", '"', "!"], 4)
        for position in range(length):
            if rng.random() < punctuation and (not distinct or len(marks)):
                words.append(str(marks[0]))
                marks = marks[1:] if distinct else rng.choice([".", ",", '"', "!"], 4)
                upos.append("PUNCT")
            else:
                word = f"w{int(order[position])}"
                words.append(word.upper() if rng.random() < 0.2 else word)
                upos.append("X")
        heads = [*range(2, length + 1), 0]
        sentences.append(TreeSentence(words, heads, upos, ["dep"] * length, f"r{number}"))
    return sentences


def depths_of(sentence: TreeSentence) -> np.ndarray:
    return tree_distances(sentence.heads)[sentence.root]


def test_every_control_sentence_is_a_tree_with_one_root():
    task = ControlTask(first_share=0.4, seed=3)
    for sentence in task.apply(random_sentences(300, 40, seed=1)):
        assert sentence.heads.count(0) == 1
        assert all(0 <= head <= sentence.length for head in sentence.heads)
        distances = tree_distances(sentence.heads)  # raises on a cycle
        assert distances.max() <= 3  # at most two levels below the root: depth <= 2, distance <= 3


@pytest.mark.skipif(not EWT_DEV.is_file(), reason="shared UD English EWT dev set not present (../shared)")
def test_control_trees_of_the_real_treebank_are_valid_and_keep_punctuation():
    sentences = read_conllu(EWT_DEV, limit=400)
    controls = ControlTask.from_sentences(sentences, seed=0).apply(sentences)
    for real, control in zip(sentences, controls, strict=True):
        assert control.heads.count(0) == 1 and tree_distances(control.heads).max() <= 3
        assert control.words == real.words and control.upos == real.upos
        assert (control.punctuation == real.punctuation).all()
        assert control.sent_id == real.sent_id and control.text == real.text
        if (~real.punctuation).sum() >= 2:  # anchors are words the metrics score
            assert not control.punctuation[control.root]


def test_hand_computed_heads_of_a_four_word_sentence():
    sentence = TreeSentence(["I", "really", "like", "tea"], [3, 3, 0, 3], ["PRON", "ADV", "VERB", "NOUN"])
    assert anchors(sentence) == (0, 3)
    # root I; tea (last anchor) -> I; really FIRST -> I; like LAST -> tea
    heads = control_heads([ROOT, FIRST, LAST, ANCHOR], (0, 3))
    assert heads == [0, 1, 4, 1]
    assert depths_of(TreeSentence(sentence.words, heads)).tolist() == [0, 1, 2, 1]
    assert tree_distances(heads)[1, 2] == 3  # FIRST to LAST: really -> I -> tea -> like
    assert ControlTask(first_share=1.0, seed=0).apply([sentence])[0].heads == [0, 1, 1, 1]
    every_last = ControlTask(first_share=0.0, seed=0).apply([sentence])[0]
    assert every_last.heads == [0, 4, 4, 1]
    assert every_last.relations == [ROOT, LAST, LAST, ANCHOR]
    assert every_last.upos == sentence.upos and every_last.words == sentence.words


def test_anchors_skip_punctuation_which_attaches_by_type():
    quoted = TreeSentence(['"', "Go", "home", "."], [2, 0, 2, 2], ["PUNCT", "VERB", "NOUN", "PUNCT"])
    assert anchors(quoted) == (1, 2)
    assert ControlTask(first_share=0.0, seed=0).apply([quoted])[0].heads == [3, 0, 2, 3]
    assert ControlTask(first_share=1.0, seed=0).apply([quoted])[0].heads == [2, 0, 2, 2]
    one_word = TreeSentence(["Yes", "!"], [0, 1], ["INTJ", "PUNCT"])
    assert anchors(one_word) == (0, 1)
    assert anchors(TreeSentence(["Hi"], [0], ["INTJ"])) == (0, 0)
    assert ControlTask(first_share=0.0, seed=0).apply([TreeSentence(["Hi"], [0], ["INTJ"])])[0].heads == [0]


def test_a_type_has_one_behaviour_in_train_and_dev_and_depths_and_distances_follow_it():
    task = ControlTask(first_share=0.5, seed=7)
    train, dev = random_sentences(150, 30, seed=1), random_sentences(150, 45, seed=2)  # dev: unseen types too
    seen: dict[str, str] = {}
    for sentence in task.apply(train) + task.apply(dev):
        root, anchor = anchors(sentence)
        depths = depths_of(sentence)
        distances = tree_distances(sentence.heads)
        middle = [i for i in range(sentence.length) if i not in (root, anchor)]
        for word in middle:
            kind = sentence.relations[word]
            assert seen.setdefault(sentence.words[word].lower(), kind) == kind
            assert kind == task.behaviour(sentence.words[word])
            assert depths[word] == (1 if kind == FIRST else 2)
        for a in middle:
            for b in middle:
                if a != b:
                    same = sentence.relations[a] == sentence.relations[b]
                    assert distances[a, b] == (2 if same else 3)
    assert task.behaviour("The") == task.behaviour("the")
    assert set(seen.values()) == {FIRST, LAST}


def test_deterministic_for_a_seed_and_different_for_another():
    sentences = random_sentences(100, 200, seed=4)
    first = ControlTask(first_share=0.5, seed=0).apply(sentences)
    again = ControlTask(first_share=0.5, seed=0).apply(sentences)
    other = ControlTask(first_share=0.5, seed=1).apply(sentences)
    assert [s.heads for s in first] == [s.heads for s in again]
    assert [s.heads for s in first] != [s.heads for s in other]
    words = [f"type{i}" for i in range(2000)]
    assert (
        np.mean([ControlTask(0.5, 0).behaviour(w) != ControlTask(0.5, 1).behaviour(w) for w in words]) > 0.4
    )


def test_behaviour_shares_follow_first_share():
    words = [f"type{i}" for i in range(4000)]
    share = np.mean([ControlTask(first_share=0.3, seed=5).behaviour(word) == FIRST for word in words])
    assert share == pytest.approx(0.3, abs=0.03)
    with pytest.raises(InvalidInput, match="first_share"):
        ControlTask(first_share=1.5, seed=0)


def test_first_share_is_the_treebanks_share_of_root_dependents(tmp_path):
    sentences = read_conllu(write_treebank(tmp_path / "t.conllu", count=2, extras=False))
    # the cat sat on the mat . : cat, mat hang from sat of 5 non-root words (. excluded)
    # the dog was good . : dog, was hang from good of 3
    assert depth_one_share(sentences) == pytest.approx(4 / 8)
    assert ControlTask.from_sentences(sentences, seed=2) == ControlTask(first_share=0.5, seed=2)
    with pytest.raises(InvalidInput, match="non-root word"):
        depth_one_share([TreeSentence(["Hi"], [0], ["INTJ"])])


def test_control_features_share_vectors_and_carry_control_gold():
    sentences = random_sentences(12, 10, seed=3)
    vectors = [np.ones((2, s.length, 4), dtype=np.float16) for s in sentences]
    features = WordFeatures(sentences, vectors, [{"sent_id": "x", "reason": "too many subwords"}])
    task = ControlTask(first_share=0.5, seed=0)
    control = control_features(features, task)
    assert control.vectors is features.vectors and control.report() == features.report()
    assert [s.heads for s in control.sentences] == [s.heads for s in task.apply(sentences)]
    for batch in make_batches(control, 5):
        for row, index in enumerate(batch.indices):
            count = control.sentences[index].length
            assert batch.depths[row, :count].tolist() == depths_of(control.sentences[index]).tolist()


def type_features(sentences: list[TreeSentence], vocabulary: list[str], seed: int) -> WordFeatures:
    """Layer 0: one-hot of the word type (the two anchors: one-hot of their position role instead);
    layer 1: Gaussian noise of the same width (no type information)."""
    rng = np.random.default_rng(seed)
    index = {word: i for i, word in enumerate(vocabulary)}
    width = len(vocabulary) + 2
    vectors = []
    for sentence in sentences:
        root, anchor = anchors(sentence)
        typed = np.zeros((sentence.length, width))
        for word, form in enumerate(sentence.words):
            typed[word, index[form.lower()]] = 1.0
        typed[[root, anchor]] = 0.0
        typed[root, -2] = typed[anchor, -1] = 1.0
        noise = rng.normal(size=(sentence.length, width))
        vectors.append(np.stack([typed, noise]).astype(np.float32))
    return WordFeatures(sentences, vectors)


def test_control_task_is_learnable_by_memorising_types_and_not_from_noise():
    vocabulary = [f"w{i}" for i in range(20)] + [".", ",", '"', "!"]
    task = ControlTask(first_share=0.5, seed=0)
    # no type twice in a sentence: identical vectors are at distance 0 under any probe, yet siblings at 2
    train = task.apply(random_sentences(160, 20, seed=1, distinct=True))
    dev = task.apply(random_sentences(50, 20, seed=2, distinct=True))
    train_features = type_features(train, vocabulary, seed=3)
    dev_features = type_features(dev, vocabulary, seed=4)
    weights = train_structural_probes(
        make_batches(train_features), make_batches(dev_features), [0, 1], len(vocabulary) + 2, rank=32
    )
    layers = evaluate_probes(dev_features, weights)["layers"]
    # depth Spearman stays below 1 even for a perfect probe: gold depths are mostly tied (1s and 2s)
    assert layers["0"]["uuas"] > 0.95 and layers["0"]["depth_spearman"] > 0.8
    assert layers["1"]["uuas"] < 0.5 and layers["1"]["depth_spearman"] < 0.3


def test_selectivity_is_real_minus_control_per_layer():
    real = {
        "layers": {
            "0": {"uuas": 0.5, "distance_spearman": 0.6, "root_accuracy": 0.7, "depth_spearman": 0.8},
            "1": {"uuas": 0.9, "distance_spearman": None, "root_accuracy": 1.0, "depth_spearman": 0.9},
        }
    }
    control = {
        "0": {"uuas": 0.25, "distance_spearman": 0.5, "root_accuracy": 0.75, "depth_spearman": 0.5},
        "1": {"uuas": 0.5, "distance_spearman": 0.4, "root_accuracy": 0.5, "depth_spearman": None},
        "2": {"uuas": 0.1, "distance_spearman": 0.1, "root_accuracy": 0.1, "depth_spearman": 0.1},
    }
    result = selectivity(real, {"layers": control})
    assert set(result) == {"0", "1"}
    assert result["0"] == pytest.approx(
        {"uuas": 0.25, "distance_spearman": 0.1, "root_accuracy": -0.05, "depth_spearman": 0.3}
    )
    assert result["1"]["uuas"] == pytest.approx(0.4) and result["1"]["root_accuracy"] == pytest.approx(0.5)
    assert result["1"]["distance_spearman"] is None and result["1"]["depth_spearman"] is None
    assert selectivity(real["layers"], control) == result
