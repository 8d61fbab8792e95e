"""The amnesic check (Elazar et al., TACL 2021) with LEACE (Belrose et al., NeurIPS 2023): the splice is
exact, LEACE's guarantee holds on the fitting states, the random control removes exactly the same rank, the
stored arrays reproduce the eraser, and the table measures what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from app.errors import InvalidInput
from app.methods.probes.amnesic import amnesic_table
from app.methods.probes.batches import make_batches
from app.methods.probes.erasure import (
    DEPTH_BUCKETS,
    ErasurePair,
    apply_erasure,
    depth_bucket,
    depth_fitter,
    fit_depth_erasers,
    pack_erasers,
    token_states,
    unpack_erasers,
)
from app.methods.probes.features import compute_word_features
from app.methods.probes.probe_maps import train_structural_probes
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.treebank import read_conllu
from app.modeling.hooks import leftover_hooks
from app.modeling.interventions import spliced_hidden_state
from tests.tiny import ARCHITECTURES, tiny_loaded
from tests.treebanks import write_treebank

EPS32 = float(np.finfo(np.float32).eps)
MAX_TOKENS = 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("amnesic")
    loaded = tiny_loaded(tmp)
    sentences = read_conllu(write_treebank(tmp / "train.conllu", 40))
    erasers = fit_depth_erasers(loaded, sentences, max_tokens=MAX_TOKENS, seed=0)
    states, buckets, _ = token_states(loaded, sentences, MAX_TOKENS)
    return loaded, sentences, erasers, states, buckets


def run_encoder(loaded, texts):
    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    if not loaded.uses_token_types:
        batch.pop("token_type_ids", None)
    with torch.no_grad():
        return loaded.model.base_model(**batch, output_hidden_states=True)


def identity_arrays(hidden: int) -> dict[str, np.ndarray]:
    """A rank-0 erasure: removes nothing."""
    return {
        "left": np.zeros((hidden, 0), np.float32),
        "right": np.zeros((0, hidden), np.float32),
        "bias": np.ones(hidden, np.float32),
    }


def float32_tolerance(states: torch.Tensor, arrays: dict[str, np.ndarray]) -> float:
    """Rounding bound of x - ((x - b) R^T) L^T in float32: a few ulps of the largest term, per sum of d
    products."""
    removed = arrays["left"].astype(np.float64) @ arrays["right"].astype(np.float64)
    centred = np.abs(states.double().numpy() - arrays["bias"]).max()
    scale = float(states.abs().max()) + np.linalg.norm(removed, 2) * centred
    return 4 * EPS32 * np.sqrt(states.shape[-1]) * scale


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_identity_splice_reproduces_every_output_exactly(tmp_path, architecture):
    loaded = tiny_loaded(tmp_path, architecture)
    texts = ["the cat sat on the mat .", "a dog"]
    clean = run_encoder(loaded, texts)
    for layer in range(loaded.num_layers + 1):
        with spliced_hidden_state(loaded, layer, lambda x: apply_erasure(x, identity_arrays(x.shape[-1]))):
            spliced = run_encoder(loaded, texts)
        assert torch.equal(spliced.last_hidden_state, clean.last_hidden_state)
        for before, after in zip(clean.hidden_states, spliced.hidden_states, strict=True):
            assert torch.equal(before, after)
    assert leftover_hooks(loaded.model) == []


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_splice_replaces_exactly_the_chosen_hidden_state(tmp_path, architecture):
    loaded = tiny_loaded(tmp_path, architecture)
    texts = ["the cat sat on the mat ."]
    clean = run_encoder(loaded, texts)
    for layer in range(loaded.num_layers + 1):
        with spliced_hidden_state(loaded, layer, lambda x: x * 0.5):
            spliced = run_encoder(loaded, texts)
        for index, (before, after) in enumerate(zip(clean.hidden_states, spliced.hidden_states, strict=True)):
            if index < layer:
                assert torch.equal(before, after)
            elif index == layer:
                assert torch.equal(after, before * 0.5)
            else:
                assert not torch.allclose(before, after)
        assert torch.equal(spliced.last_hidden_state, spliced.hidden_states[-1])


def test_splice_hook_is_removed_when_the_body_raises(tmp_path):
    loaded = tiny_loaded(tmp_path)
    with pytest.raises(RuntimeError), spliced_hidden_state(loaded, 1, lambda x: x):
        raise RuntimeError("boom")
    assert leftover_hooks(loaded.model) == []
    with pytest.raises(InvalidInput, match="hidden states 0..2"):
        with spliced_hidden_state(loaded, 3, lambda x: x):
            pass


def test_depth_buckets_cap_at_five_or_more():
    assert depth_bucket(np.array([0, 1, 4, 5, 9])).tolist() == [0, 1, 4, 5, 5]


def test_leace_makes_every_bucket_mean_equal_on_the_fitting_states(tiny):
    _, _, erasers, states, buckets = tiny
    present = np.unique(buckets)
    assert len(present) >= 3
    for layer, pair in erasers.items():
        x = states[layer]
        erased = apply_erasure(x, pair.leace).double().numpy()
        tolerance = float32_tolerance(x, pair.leace)
        before = np.stack([x.double().numpy()[buckets == k].mean(0) for k in present])
        after = np.stack([erased[buckets == k].mean(0) for k in present])
        assert np.abs(after - erased.mean(0)).max() <= tolerance
        assert np.abs(before - x.double().numpy().mean(0)).max() > 1000 * tolerance  # the check can fail
        # the unconditional mean is kept (affine LEACE)
        assert np.allclose(erased.mean(0), x.double().numpy().mean(0), atol=tolerance)


def test_a_linear_probe_on_erased_states_is_no_better_than_the_majority_class(tiny):
    _, _, erasers, states, buckets = tiny
    majority = np.bincount(buckets).max() / len(buckets)
    for layer, pair in erasers.items():
        x = states[layer].double().numpy()
        probe = LogisticRegression(max_iter=5000).fit(x, buckets)
        assert probe.score(x, buckets) > majority + 0.2  # depth is linearly readable before erasure
        erased = apply_erasure(states[layer], pair.leace).double().numpy()
        probe = LogisticRegression(max_iter=5000).fit(erased, buckets)
        assert probe.score(erased, buckets) <= majority + 1e-12


def test_ranks_projections_and_the_random_control(tiny):
    loaded, _, erasers, states, _ = tiny
    for layer, pair in erasers.items():
        leace = pair.leace["left"].astype(np.float64) @ pair.leace["right"].astype(np.float64)
        random = pair.random["left"].astype(np.float64) @ pair.random["right"].astype(np.float64)
        present = int((np.asarray(pair.fit["bucket_counts"]) > 0).sum())
        assert 1 <= pair.rank <= present - 1 <= DEPTH_BUCKETS - 1
        assert pair.leace["left"].shape == (loaded.hidden_size, pair.rank)
        assert np.linalg.matrix_rank(leace, tol=1e-4) == pair.rank
        assert np.linalg.matrix_rank(random, tol=1e-4) == pair.rank
        assert np.allclose(leace @ leace, leace, atol=1e-4)  # LEACE removes an oblique projection
        assert np.allclose(random @ random, random, atol=1e-5)  # the control an orthogonal one
        assert np.allclose(random, random.T, atol=1e-6)
        assert np.allclose(pair.random["bias"], pair.leace["bias"])
        once = apply_erasure(states[layer], pair.random)
        assert torch.allclose(apply_erasure(once, pair.random), once, atol=1e-5)


def test_stored_arrays_apply_like_the_eraser_itself(tiny):
    loaded, _, erasers, states, buckets = tiny
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(buckets), DEPTH_BUCKETS).double()
    for layer, pair in erasers.items():
        eraser = depth_fitter(loaded.hidden_size).update(states[layer].double(), one_hot).eraser
        expected = eraser(states[layer].double())
        stored = apply_erasure(states[layer], pair.leace).double()
        assert torch.allclose(stored, expected, rtol=0, atol=float32_tolerance(states[layer], pair.leace))
        unpacked = unpack_erasers(pack_erasers(erasers))[layer]
        assert torch.equal(
            apply_erasure(states[layer], unpacked["leace"]), apply_erasure(states[layer], pair.leace)
        )
        assert torch.equal(
            apply_erasure(states[layer], unpacked["random"]), apply_erasure(states[layer], pair.random)
        )


def test_fitting_is_deterministic_given_the_seed(tiny):
    loaded, sentences, erasers, _, _ = tiny
    again = fit_depth_erasers(loaded, sentences, [0, 2], max_tokens=MAX_TOKENS, seed=0)
    other = fit_depth_erasers(loaded, sentences, [0, 2], max_tokens=MAX_TOKENS, seed=1)
    for layer in (0, 2):
        for kind in ("leace", "random"):
            for name in ("left", "right", "bias"):
                assert np.array_equal(again[layer].arrays(kind)[name], erasers[layer].arrays(kind)[name])
        assert np.array_equal(other[layer].leace["left"], erasers[layer].leace["left"])
        assert not np.allclose(other[layer].random["left"], erasers[layer].random["left"])
    with pytest.raises(InvalidInput):
        fit_depth_erasers(loaded, sentences, [3], max_tokens=MAX_TOKENS)


class Head:
    """A fitted-head stand-in: labels as strings, weights over the pooled embedding."""

    def __init__(self, hidden: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.labels = ["0", "1"]
        self.weight = rng.standard_normal((2, hidden)).astype(np.float32)
        self.bias = np.zeros(2, np.float32)


def identity_pair(layer: int, hidden: int) -> ErasurePair:
    return ErasurePair(layer, identity_arrays(hidden), identity_arrays(hidden), 0)


@pytest.fixture(scope="module")
def probes(tiny):
    loaded, sentences, _, _, _ = tiny
    features = compute_word_features(loaded, sentences, max_tokens=MAX_TOKENS)
    batches = make_batches(features)
    layers = list(range(loaded.num_layers + 1))
    return train_structural_probes(batches, batches, layers, loaded.hidden_size, rank=8, max_epochs=2)


LABELLED = [("the movie was good", 1), ("a bad movie", 0), ("this is very good", 1), ("not good", 0)]


def test_identity_erasure_changes_nothing_in_the_table(tiny, probes):
    loaded, sentences, _, _, _ = tiny
    dev = sentences[:8]
    erasers = {layer: identity_pair(layer, loaded.hidden_size) for layer in (0, 1, 2)}
    table = amnesic_table(
        loaded, erasers, dev, probes, Head(loaded.hidden_size), LABELLED, max_tokens=MAX_TOKENS
    )
    direct = evaluate_probes(compute_word_features(loaded, dev, max_tokens=MAX_TOKENS), probes)["layers"]
    assert table["none"]["probes"] == direct
    assert [row["layer"] for row in table["rows"]] == [0, 1, 2]
    assert [row["later_layers"] for row in table["rows"]] == [[1, 2], [2], []]
    for row in table["rows"]:
        assert row["accuracy"]["leace"] == row["accuracy"]["random"] == row["accuracy"]["none"]
        assert row["uuas"]["leace"] == row["uuas"]["random"] == row["uuas"]["none"]
        assert row["uuas"]["none"] == [direct[str(layer)]["uuas"] for layer in row["later_layers"]]
        assert row["mean_uuas_drop"] == (
            {"leace": 0.0, "random": 0.0} if row["later_layers"] else {"leace": None, "random": None}
        )
    assert table["classifier"] == "fitted head" and table["labelled"] == 4


def test_leace_erasure_moves_later_layers_and_reports_each_kind(tiny, probes):
    loaded, sentences, erasers, _, _ = tiny
    table = amnesic_table(loaded, {0: erasers[0]}, sentences[:8], probes, max_tokens=MAX_TOKENS)
    row = table["rows"][0]
    assert row["rank"] == erasers[0].rank and row["accuracy"]["leace"] is None
    assert set(row["probes"]["leace"]) == {"1", "2"}
    assert row["probes"]["leace"] != table["none"]["probes"]  # the erasure reached the later layers
    assert table["classifier"] is None


def test_a_sequence_classifier_is_scored_by_its_own_logits(tmp_path, tiny, probes):
    _, sentences, _, _, _ = tiny
    classifier = tiny_loaded(tmp_path, head="classification")
    erasers = {2: identity_pair(2, classifier.hidden_size)}
    table = amnesic_table(classifier, erasers, sentences[:4], probes, None, LABELLED, max_tokens=MAX_TOKENS)
    assert table["classifier"] == "model logits"
    assert table["rows"][0]["accuracy"]["leace"] == table["none"]["accuracy"]
    plain = tiny_loaded(tmp_path)
    with pytest.raises(InvalidInput, match="fitted head"):
        amnesic_table(plain, erasers, sentences[:4], probes, None, LABELLED, max_tokens=MAX_TOKENS)
