"""The attention method: shapes, row sums, head mean, and a hand-computed uniform case."""

from __future__ import annotations

import numpy as np
import torch

from app.methods.mixing.attention import Attention
from app.modeling.encoding import encode
from tests.tiny import uniform_attention_loaded


def test_shapes_rows_and_mean(tiny_bert):
    encoded = encode(tiny_bert.tokenizer, "the cat sat on the mat .", max_tokens=64)
    result = Attention().run(tiny_bert, encoded, Attention.Params(), None)
    n = encoded.length
    assert result.layers.shape == (2, 4, n, n)
    assert result.mean.shape == (2, n, n)
    np.testing.assert_allclose(result.layers.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.mean, result.layers.mean(1), atol=1e-6)


def test_zero_queries_give_uniform_attention(tmp_path):
    """With W_Q = 0 and b_Q = 0 every score is 0, so softmax is 1/N for every key (hand-computed)."""
    loaded = uniform_attention_loaded(tmp_path)
    encoded = encode(loaded.tokenizer, "a cat", max_tokens=64)  # [CLS] a cat [SEP]
    result = Attention().run(loaded, encoded, Attention.Params(), None)
    np.testing.assert_allclose(result.layers, 0.25, atol=1e-6)


def test_matches_manual_softmax(tiny_bert):
    """Layer 0 head 0 recomputed by hand from the embeddings: softmax(q k^T / sqrt(d))."""
    encoded = encode(tiny_bert.tokenizer, "the dog was good", max_tokens=64)
    result = Attention().run(tiny_bert, encoded, Attention.Params(), None)
    model = tiny_bert.model
    with torch.no_grad():
        hidden = model.embeddings(input_ids=encoded.input_ids, token_type_ids=encoded.token_type_ids)[0]
        attention = model.encoder.layer[0].attention.self
        q = attention.query(hidden)[:, :8]
        k = attention.key(hidden)[:, :8]
        expected = torch.softmax(q @ k.T / np.sqrt(8), dim=-1).numpy()
    np.testing.assert_allclose(result.layers[0, 0], expected, atol=1e-5)
