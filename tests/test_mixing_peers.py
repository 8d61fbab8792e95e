"""Attention rollout and attention norm: hand-computed cases and an explicit per-head reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.methods.mixing.attention_norm import AttentionNorm
from app.methods.mixing.attention_rollout import AttentionRollout
from app.modeling.encoding import encode
from app.modeling.loading import wrap_model
from tests.tiny import ARCHITECTURES, make_model, make_tokenizer, tiny_loaded


def _uniform_attention_model(tmp_path):
    """W_Q = 0 makes every attention row uniform (1/N), in both layers."""
    model = make_model("bert")
    for layer in model.encoder.layer:
        layer.attention.self.query.weight.data.zero_()
        layer.attention.self.query.bias.data.zero_()
    return wrap_model(
        model, make_tokenizer(tmp_path), name="uniform", source="test", device=torch.device("cpu")
    )


def test_rollout_by_hand_on_uniform_attention(tmp_path):
    loaded = _uniform_attention_model(tmp_path)
    encoded = encode(loaded.tokenizer, "a cat", max_tokens=64)  # 4 tokens
    result = AttentionRollout().run(loaded, encoded, AttentionRollout.Params(), None)
    one_layer = np.full((4, 4), 0.125) + np.eye(4) * 0.5  # 0.5 * 1/4 + 0.5 * I
    np.testing.assert_allclose(result.layers[0], one_layer, atol=1e-6)
    # two layers: diagonal 0.625^2 + 3 * 0.125^2 = 0.4375,
    # off-diagonal 2 * 0.625 * 0.125 + 2 * 0.125^2 = 0.1875
    two_layers = np.full((4, 4), 0.1875) + np.eye(4) * (0.4375 - 0.1875)
    np.testing.assert_allclose(result.rollout, two_layers, atol=1e-6)


def _explicit_norms(loaded, encoded, layer: int) -> torch.Tensor:
    """||sum_h a^h_ij (x_j W_V^h + b_V^h) W_O^h|| with an explicit loop over heads and tokens."""
    model, adapter = loaded.model, loaded.adapter
    with torch.no_grad():
        outputs = adapter.encoder(model)(
            **encoded.model_inputs(), output_attentions=True, output_hidden_states=True
        )
        x = outputs.hidden_states[layer][0]
        attention = outputs.attentions[layer][0]
        value = adapter.value_projection(model, layer)
        w_o = adapter.attention_output_projection(model, layer).weight
        heads, size = attention.shape[0], x.shape[1] // attention.shape[0]
        n = x.shape[0]
        norms = torch.zeros(n, n, dtype=torch.float64)
        for i in range(n):
            for j in range(n):
                vector = torch.zeros(x.shape[1])
                for h in range(heads):
                    part = slice(h * size, (h + 1) * size)
                    v = x[j] @ value.weight[part].T + value.bias[part]
                    vector += attention[h, i, j] * (v @ w_o[:, part].T)
                norms[i, j] = vector.norm()
    return norms


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_attention_norm_matches_explicit_loop(tmp_path, architecture):
    loaded = tiny_loaded(tmp_path, architecture)
    encoded = encode(
        loaded.tokenizer, "the cat sat on the mat", max_tokens=64, token_types=loaded.uses_token_types
    )
    result = AttentionNorm().run(loaded, encoded, AttentionNorm.Params(), None)
    for layer in range(2):
        np.testing.assert_allclose(
            result.raw[layer], _explicit_norms(loaded, encoded, layer).numpy(), atol=1e-5
        )
    np.testing.assert_allclose(result.layers.sum(-1), 1.0, atol=1e-5)


def test_attention_norm_is_zero_when_values_are_zero(tmp_path):
    model = make_model("bert")
    for layer in model.encoder.layer:
        layer.attention.self.value.weight.data.zero_()
        layer.attention.self.value.bias.data.zero_()
    loaded = wrap_model(
        model, make_tokenizer(tmp_path), name="novalue", source="test", device=torch.device("cpu")
    )
    result = AttentionNorm().run(
        loaded, encode(loaded.tokenizer, "a cat", max_tokens=64), AttentionNorm.Params(), None
    )
    assert np.all(result.raw == 0) and np.all(result.layers == 0)  # all-zero rows stay zero, no NaN
