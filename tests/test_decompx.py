"""DecompX (Modarressi et al., ACL 2023): the decomposition is exact at every block and in the class scores.

Every test model gets random biases and LayerNorm parameters (``randomise_biases``): freshly initialised
transformers have all biases zero and gamma = 1, which would leave the bias split untested.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import (
    BertForSequenceClassification,
    DistilBertForSequenceClassification,
    ElectraForSequenceClassification,
    RobertaForSequenceClassification,
)

from app.errors import TargetNotAvailable
from app.methods import METHODS
from app.methods.decomposition import decompx as core
from app.methods.decomposition.shares import bias_shares
from app.modeling.encoding import encode
from app.modeling.loading import LoadedModel, wrap_model
from app.modeling.targets import (
    ClassificationTarget,
    HeadTarget,
    MaskedTokenTarget,
    ZeroShotTarget,
    bind_target,
)
from tests.numerics import encoder_reduction_length, float32_difference_bound
from tests.reference.decompx import reference_states
from tests.tiny import ARCHITECTURES, make_config, make_model, make_tokenizer, tiny_loaded

SENTENCE = "a good movie with a bad end ."
MODES = ["absdot", "bias_token"]
CLASSIFIERS = {
    "bert": BertForSequenceClassification,
    "roberta": RobertaForSequenceClassification,
    "distilbert": DistilBertForSequenceClassification,
    "electra": ElectraForSequenceClassification,
}
UNIT_ROUNDOFF_64 = 2.0**-53


def randomise_biases(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Add N(0, 0.5) noise to every bias and LayerNorm weight so that every bias split matters."""
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in model.named_parameters():
        if name.endswith("bias") or "norm" in name.lower():
            parameter.data += 0.5 * torch.randn(parameter.shape, generator=generator)
    return model


def build(
    tmp: Path, architecture: str, head: str = "none", dtype: torch.dtype = torch.float32
) -> LoadedModel:
    """A tiny model (a sequence classifier when ``head`` is "classification") with random biases."""
    if head == "classification":
        torch.manual_seed(0)
        config = make_config(architecture, num_labels=3)
        config.id2label = {0: "negative", 1: "neutral", 2: "positive"}
        config.label2id = {label: index for index, label in config.id2label.items()}
        model = CLASSIFIERS[architecture](config)
    else:
        model = make_model(architecture)
    randomise_biases(model).to(dtype)
    tokenizer = make_tokenizer(tmp / f"tok-{architecture}", token_types=architecture != "distilbert")
    cpu = torch.device("cpu")
    return wrap_model(model, tokenizer, name=f"tiny-{architecture}", source="test", device=cpu)


def real_hidden_states(loaded: LoadedModel, encoded) -> list[torch.Tensor]:
    with torch.no_grad():
        out = loaded.adapter.encoder(loaded.model)(**encoded.model_inputs(), output_hidden_states=True)
    return [state[0] for state in out.hidden_states[1:]]


def float32_bound(loaded: LoadedModel, tokens: int, scale: float) -> float:
    """Rounding bound (tests/numerics.py) for the sum of a token's vectors against its real hidden state.

    Both sides are float32 evaluations of one quantity. The chain: the encoder's own reductions
    (``encoder_reduction_length``), per block the bias-share dot products (attention bias, beta, b_1, b_2,
    beta: four of ``hidden`` and one of ``intermediate``) and their sums over ``tokens + 1`` sources, and
    the final sum over the sources. ``scale``: the size of the summed terms, sum_k |c_ik|.
    """
    per_block = 4 * loaded.hidden_size + loaded.num_units + 5 * (tokens + 1)
    length = encoder_reduction_length(loaded.config, tokens) + loaded.num_layers * per_block + tokens + 1
    return float(float32_difference_bound(scale, length))


def float64_bound(loaded: LoadedModel, tokens: int, scale: float) -> float:
    """The worst-case bound (Higham's gamma_n) with float64's unit roundoff, for the same chain."""
    per_block = 4 * loaded.hidden_size + loaded.num_units + 5 * (tokens + 1)
    length = encoder_reduction_length(loaded.config, tokens) + loaded.num_layers * per_block + tokens + 1
    return 2 * length * UNIT_ROUNDOFF_64 / (1 - length * UNIT_ROUNDOFF_64) * scale


def assert_blocks_exact(loaded: LoadedModel, encoded, mode: str, bound) -> core.Decomposition:
    decomposition = core.decompose(loaded, encoded, mode=mode, keep_states=True)
    reals = real_hidden_states(loaded, encoded)
    for layer, (state, real) in enumerate(zip(decomposition.states, reals, strict=True)):
        scale = max(float(state.abs().sum(dim=1).max()), float(real.abs().max()))
        error = float((state.sum(dim=1) - real.to(state.dtype)).abs().max())
        limit = bound(loaded, encoded.length, scale)
        assert error <= limit, f"block {layer}: |sum - real| {error:.3g} > {limit:.3g}"
        assert decomposition.checks[layer].sum_error == pytest.approx(error, rel=1e-6, abs=limit)
    return decomposition


def test_bias_shares_by_hand():
    dots = torch.tensor([[1.0, -3.0, 0.0, 5.0], [0.0, 0.0, 0.0, 2.0]])
    shares = bias_shares(dots, "absdot")
    # |1| : |-3| : 0 among the tokens; the bias column's own dot is ignored; an all-zero row keeps the bias
    assert torch.equal(shares, torch.tensor([[0.25, 0.75, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
    assert torch.equal(bias_shares(dots, "bias_token"), torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 2))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_block_sums_to_the_real_hidden_state_float32(tmp_path, architecture, mode):
    loaded = build(tmp_path, architecture)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    decomposition = assert_blocks_exact(loaded, encoded, mode, float32_bound)
    bias_part = decomposition.state[:, -1].norm(dim=-1)
    if mode == "absdot":  # every bias went to the tokens
        assert float(bias_part.max()) == 0.0
    else:  # the biases are all in the bias part, and they are not small
        assert float(bias_part.min()) > 0.1
    for check in decomposition.checks:  # GeLU_ZO is exact in the total: only rounding remains
        assert check.ffn_sum_error <= float32_bound(loaded, encoded.length, check.scale)
        assert 0 < check.ffn_component_gap < 10  # reported: how non-additive the activation is per vector


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_block_sums_exactly_in_float64_and_matches_the_reference(tmp_path, architecture):
    loaded = build(tmp_path, architecture, dtype=torch.float64)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    decomposition = assert_blocks_exact(loaded, encoded, "absdot", float64_bound)
    reference = reference_states(loaded, encoded)
    for layer, (state, expected) in enumerate(zip(decomposition.states, reference, strict=True)):
        scale = float(expected.abs().sum(dim=1).max())
        assert float((state - expected).abs().max()) <= float64_bound(loaded, encoded.length, scale), layer


def test_chunking_over_sources_changes_nothing(tmp_path, monkeypatch):
    loaded = build(tmp_path, "bert", dtype=torch.float64)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    whole = core.decompose(loaded, encoded)
    monkeypatch.setattr(core, "CHUNK_ELEMENTS", 1)  # one source per chunk
    chunked = core.decompose(loaded, encoded)
    scale = float(whole.state.abs().sum(dim=1).max())
    assert float((whole.state - chunked.state).abs().max()) <= float64_bound(loaded, encoded.length, scale)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_class_scores_sum_to_the_classifier_logits(tmp_path, architecture, mode):
    loaded = build(tmp_path, architecture, head="classification")
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    target = bind_target(loaded, ClassificationTarget(), encoded)
    method = METHODS["decompx"]
    result = method.run(loaded, encoded, method.Params(bias=mode), target)
    with torch.no_grad():
        logits = loaded.model(**encoded.model_inputs()).logits[0].double().numpy()
    assert result.class_scores.shape == (3, encoded.length) and result.class_labels == loaded.label_names
    assert np.array_equal(result.scores, result.class_scores[target.index]) and result.signed
    total = result.class_scores.astype(np.float64).sum(axis=1) + result.bias_scores
    scale = float(np.abs(result.class_scores).sum(axis=1).max() + np.abs(result.bias_scores).max())
    # the head adds its two dense layers (hidden each) and the sum over the sources to the chain
    limit = float32_bound(loaded, encoded.length, scale) * 2
    assert np.abs(total - logits).max() <= limit
    assert result.decomposition_error <= limit
    if mode == "absdot":
        assert np.all(result.bias_scores == 0)
    assert len(result.checks["sum_error"]) == loaded.num_layers


def _fitted_head(hidden: int) -> SimpleNamespace:
    generator = np.random.default_rng(0)
    return SimpleNamespace(
        labels=["a", "b", "c"],
        weight=generator.normal(size=(3, hidden)).astype(np.float32),
        bias=generator.normal(size=3).astype(np.float32),
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("kind", ["head", "zero_shot"])
def test_pooled_target_scores_sum_to_the_real_scores(tmp_path, architecture, kind):
    loaded = build(tmp_path, architecture)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    head = _fitted_head(loaded.hidden_size)
    spec = HeadTarget(head="fitted") if kind == "head" else ZeroShotTarget(labels=["good", "bad", "end"])
    target = bind_target(loaded, spec, encoded, heads=lambda _: head)
    method = METHODS["decompx"]
    result = method.run(loaded, encoded, method.Params(), target)
    with torch.no_grad():
        real = target.scores(**encoded.model_inputs())[0].double().numpy()
    total = result.class_scores.astype(np.float64).sum(axis=1) + result.bias_scores
    scale = float(np.abs(result.class_scores).sum(axis=1).max() + np.abs(real).max())
    assert np.abs(total - real).max() <= 2 * float32_bound(loaded, encoded.length, scale)
    assert result.class_labels == list(target.labels)
    assert result.prediction["label"] == target.labels[target.index]


def test_masked_token_target_is_refused_with_a_reason(tmp_path):
    loaded = tiny_loaded(tmp_path, "bert", head="masked_lm")
    encoded = encode(loaded.tokenizer, "the cat [MASK] on the mat", max_tokens=64)
    target = bind_target(loaded, MaskedTokenTarget(), encoded)
    with pytest.raises(TargetNotAvailable, match="masked-language-model head is not decomposed"):
        METHODS["decompx"].run(loaded, encoded, METHODS["decompx"].Params(), target)


def test_one_token_input_owns_everything(tmp_path):
    """With one token, attention has one key: the whole score is that token's (no bias part in absdot)."""
    loaded = build(tmp_path, "bert", head="classification")
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    encoded.input_ids = encoded.input_ids[:, :1]
    encoded.attention_mask = encoded.attention_mask[:, :1]
    if encoded.token_type_ids is not None:
        encoded.token_type_ids = encoded.token_type_ids[:, :1]
    target = bind_target(loaded, ClassificationTarget(), encoded)
    result = METHODS["decompx"].run(loaded, encoded, METHODS["decompx"].Params(), target)
    with torch.no_grad():
        logits = loaded.model(**encoded.model_inputs()).logits[0].numpy()
    assert result.class_scores.shape == (3, 1)
    np.testing.assert_allclose(result.class_scores[:, 0], logits, rtol=1e-5, atol=1e-5)
    mixing = METHODS["decompx_mixing"].run(loaded, encoded, METHODS["decompx_mixing"].Params(), None)
    assert np.array_equal(mixing.layers, np.ones((loaded.num_layers, 1, 1), dtype=np.float32))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_mixing_rows_and_the_first_block(tmp_path, architecture):
    loaded = build(tmp_path, architecture)
    encoded = encode(loaded.tokenizer, SENTENCE, max_tokens=64)
    method = METHODS["decompx_mixing"]
    result = method.run(loaded, encoded, method.Params(), None)
    n, layers = encoded.length, loaded.num_layers
    assert result.layers.shape == result.rollout_layers.shape == result.raw.shape == (layers, n, n)
    np.testing.assert_allclose(result.layers.sum(axis=-1), 1, atol=1e-6)
    np.testing.assert_allclose(result.rollout_layers.sum(axis=-1), 1, atol=1e-6)
    # the propagated decomposition after the first block is that block's own decomposition from the identity
    np.testing.assert_allclose(result.rollout_layers[0], result.layers[0], atol=1e-6)
    assert np.array_equal(result.rollout, result.rollout_layers[-1])
    # later blocks differ: the rollout propagates vectors, it does not reuse the one-block matrices
    assert not np.allclose(result.rollout_layers[-1], result.layers[-1], atol=1e-3)


def test_embedded_model_blocks_and_zero_shot_are_exact(embedded):
    encoded = encode(embedded.tokenizer, "a gripping , funny and deeply moving film .", max_tokens=128)
    assert_blocks_exact(embedded, encoded, "absdot", float32_bound)
    target = bind_target(embedded, ZeroShotTarget(), encoded)
    result = METHODS["decompx"].run(embedded, encoded, METHODS["decompx"].Params(), target)
    with torch.no_grad():
        real = target.scores(**encoded.model_inputs())[0].double().numpy()
    total = result.class_scores.astype(np.float64).sum(axis=1) + result.bias_scores
    scale = float(np.abs(result.class_scores).sum(axis=1).max())
    assert np.abs(total - real).max() <= 2 * float32_bound(embedded, encoded.length, scale)
    assert math.isfinite(result.decomposition_error)


def test_api_runs_decompx_and_its_mixing(client):
    target = {"kind": "zero_shot", "labels": ["good", "bad"]}
    body = client.post(
        "/api/analyses", json={"method": "decompx", "text": "a good movie", "target": target}
    ).json()
    result = body["result"]
    assert result["class_labels"] == ["good", "bad"] and len(result["class_scores"]) == 2
    assert len(result["class_scores"][0]) == len(body["tokens"]) and result["signed"] is True
    assert result["decomposition_error"] < 1e-4
    stored = client.get(f"/api/analyses/{body['id']}").json()["result"]
    assert stored["class_scores"] == result["class_scores"]
    assert client.get(f"/api/analyses/{body['id']}/figure").status_code == 200
    mixing = client.post("/api/analyses", json={"method": "decompx_mixing", "text": "a good movie"}).json()
    assert len(mixing["result"]["rollout"]) == len(mixing["tokens"])
    assert client.get(f"/api/analyses/{mixing['id']}/figure").status_code == 200
