"""Attention rollout and attention norm: hand-computed cases and an explicit per-head reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.methods.mixing.attention_norm import AttentionNorm
from app.methods.mixing.attention_rollout import AttentionRollout
from app.modeling.encoding import encode
from app.modeling.loading import wrap_model
from tests.numerics import assert_float32_close
from tests.tiny import ARCHITECTURES, make_model, make_tokenizer, tiny_loaded, uniform_attention_loaded


def _uniform_attention_model(tmp_path):
    """W_Q = 0 makes every attention row uniform (1/N), in both layers."""
    return uniform_attention_loaded(tmp_path)


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
    # Both read bitwise the same pass (same input, same shapes) and then sum in other orders (einsums vs a
    # loop per head) in float32: value and output projections, sum over heads, norm (tests/numerics.py)
    length = 4 * loaded.hidden_size
    for layer in range(2):
        explicit = _explicit_norms(loaded, encoded, layer).numpy()
        assert_float32_close(result.raw[layer], explicit, reduction_length=length, err_msg=str(layer))
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


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_alti_decomposition_is_exact(tmp_path, architecture):
    """sum_j T_i(x_j) + (b_O and beta terms) equals the real output of the attention block's LayerNorm."""
    from app.methods.mixing.alti import token_decomposition
    from app.methods.mixing.common import clean_pass

    loaded = tiny_loaded(tmp_path, architecture)
    encoded = encode(
        loaded.tokenizer, "the cat sat on the mat", max_tokens=64, token_types=loaded.uses_token_types
    )
    clean = clean_pass(loaded, encoded)
    model, adapter = loaded.model, loaded.adapter
    for layer in range(2):
        norm = adapter.attention_layer_norm(model, layer)
        dense = adapter.attention_output_projection(model, layer)
        x, out = clean.inputs[layer], clean.attention_outputs[layer]
        parts = token_decomposition(
            x, clean.attentions[layer], clean.values[layer], out, dense.weight, norm, slice(0, encoded.length)
        )
        pre = (out + x).double()
        sigma = torch.sqrt(pre.var(-1, unbiased=False, keepdim=True) + norm.eps)
        bias = (
            dense.bias.double() - dense.bias.double().mean()
        ) * norm.weight.double() / sigma + norm.bias.double()
        torch.testing.assert_close(parts.sum(dim=1) + bias, norm(out + x).double(), atol=1e-5, rtol=1e-5)


def test_alti_contributions_match_an_explicit_loop(tmp_path):
    from app.methods.mixing.alti import Alti, token_decomposition
    from app.methods.mixing.common import clean_pass

    loaded = tiny_loaded(tmp_path, "bert")
    encoded = encode(loaded.tokenizer, "the dog was good", max_tokens=64)
    result = Alti().run(loaded, encoded, Alti.Params(), None)
    clean = clean_pass(loaded, encoded)
    model, adapter = loaded.model, loaded.adapter
    norm = adapter.attention_layer_norm(model, 0)
    x, out = clean.inputs[0], clean.attention_outputs[0]
    y = norm(out + x).double()
    n = encoded.length
    expected = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            t = token_decomposition(
                x,
                clean.attentions[0],
                clean.values[0],
                out,
                adapter.attention_output_projection(model, 0).weight,
                norm,
                slice(j, j + 1),
            )[i, 0]
            expected[i, j] = max(0.0, float(y[i].abs().sum() - (y[i] - t).abs().sum()))
    np.testing.assert_allclose(result.raw[0], expected, atol=1e-5)
    np.testing.assert_allclose(result.layers.sum(-1), 1.0, atol=1e-5)
