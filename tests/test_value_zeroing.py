"""Value Zeroing: exact against the slow references on every architecture; hand-computed invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.methods.mixing.common import normalise_rows, rollout
from app.methods.mixing.value_zeroing import ValueZeroing, _value_zeroing_layer
from app.modeling.encoding import encode
from app.modeling.hooks import leftover_hooks
from tests.reference import value_zeroing as reference
from tests.tiny import ARCHITECTURES, tiny_loaded

SENTENCE = "the keys to the cabinet are on the table ."


def test_normalise_rows_by_hand():
    matrix = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert normalise_rows(matrix).tolist() == [[0.25, 0.75], [0.0, 0.0]]


def test_rollout_by_hand():
    first = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    second = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    chained = rollout(torch.stack([first, second]))
    assert chained[0].tolist() == first.tolist()
    assert chained[1].tolist() == [[0.5, 0.5], [1.0, 0.0]]  # second @ first, no identity term


def test_self_only_attention_mixes_nothing():
    """If every token attends only to itself, zeroing v_j changes only token j: C is diagonal."""
    torch.manual_seed(0)
    tokens, hidden, heads = 4, 8, 2
    x = torch.randn(tokens, hidden)
    attention = torch.eye(tokens).expand(heads, tokens, tokens)
    values = torch.randn(tokens, hidden)
    w_o = torch.randn(hidden, hidden)
    attention_output = values @ w_o.T  # context = v_i when attention is the identity
    norm = torch.nn.LayerNorm(hidden)
    scores = _value_zeroing_layer(x, attention, values, attention_output, w_o, norm, hidden)
    off_diagonal = scores[~torch.eye(tokens, dtype=torch.bool)]
    assert torch.allclose(off_diagonal, torch.zeros_like(off_diagonal), atol=1e-6)
    assert (scores.diagonal() > 0).all()


def test_chunking_does_not_change_the_result(monkeypatch, tiny_bert):
    encoded = encode(tiny_bert.tokenizer, SENTENCE, max_tokens=64)
    whole = ValueZeroing().run(tiny_bert, encoded, ValueZeroing.Params(), None)
    monkeypatch.setattr("app.methods.mixing.common.CHUNK_ELEMENTS", 1)  # one key at a time
    chunked = ValueZeroing().run(tiny_bert, encoded, ValueZeroing.Params(), None)
    np.testing.assert_allclose(whole.raw, chunked.raw, atol=1e-6)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_equals_per_layer_reference(tmp_path, architecture):
    loaded = tiny_loaded(tmp_path, architecture)
    encoded = encode(
        loaded.tokenizer, SENTENCE, "where are the keys ?", max_tokens=64, token_types=loaded.uses_token_types
    )
    result = ValueZeroing().run(loaded, encoded, ValueZeroing.Params(), None)
    expected = reference.per_layer(loaded, encoded)
    np.testing.assert_allclose(result.raw, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(result.layers, reference.normalised(expected).numpy(), atol=1e-5)
    np.testing.assert_allclose(result.layers.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.rollout, result.rollout_layers[-1])
    assert leftover_hooks(loaded.model) == []


def test_references_agree(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, SENTENCE, max_tokens=64)
    torch.testing.assert_close(
        reference.per_layer(tiny_bert, encoded),
        reference.full_forward(tiny_bert, encoded),
        atol=1e-5,
        rtol=1e-5,
    )
    assert leftover_hooks(tiny_bert.model) == []


@pytest.mark.slow
def test_equals_reference_on_the_embedded_model(embedded):
    encoded = encode(
        embedded.tokenizer, "The keys to the cabinet, which were lost, are on the table.", max_tokens=512
    )
    result = ValueZeroing().run(embedded, encoded, ValueZeroing.Params(), None)
    expected = reference.per_layer(embedded, encoded)
    np.testing.assert_allclose(result.raw, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(result.layers, reference.normalised(expected).numpy(), atol=1e-5)
