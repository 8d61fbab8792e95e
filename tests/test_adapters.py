"""Adapters find the right modules in every supported architecture; hooks see the expected shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from app.errors import UnsupportedArchitecture
from app.modeling.adapters import ADAPTERS, adapter_for
from app.modeling.hooks import capture, leftover_hooks
from tests.tiny import ARCHITECTURES, tiny_loaded


@pytest.fixture(scope="module", params=ARCHITECTURES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return tiny_loaded(tmp_path_factory.mktemp(request.param), request.param)


def test_every_required_architecture_has_an_adapter():
    assert set(ARCHITECTURES) <= set(ADAPTERS)


def test_unknown_architecture_lists_supported_ones():
    with pytest.raises(UnsupportedArchitecture) as error:
        adapter_for("gpt2")
    for name in ARCHITECTURES:
        assert name in error.value.message


def test_adapter_modules_have_expected_types(loaded):
    model, adapter = loaded.model, loaded.adapter
    assert adapter.num_layers(model) == 2
    for layer in range(2):
        for linear in (
            adapter.query_projection,
            adapter.key_projection,
            adapter.value_projection,
            adapter.attention_output_projection,
            adapter.ffn_output_projection,
        ):
            module = linear(model, layer)
            assert isinstance(module, nn.Linear)
        assert adapter.value_projection(model, layer).out_features == 32
        assert adapter.ffn_output_projection(model, layer).in_features == 37
        assert isinstance(adapter.attention_layer_norm(model, layer), nn.LayerNorm)
        assert isinstance(adapter.output_layer_norm(model, layer), nn.LayerNorm)


def _inputs(loaded, text: str = "the cat sat on the mat ."):
    batch = loaded.tokenizer(text, return_tensors="pt")
    if not loaded.uses_token_types:
        batch.pop("token_type_ids", None)
    return dict(batch)


def test_hooks_capture_expected_shapes(loaded):
    model, adapter = loaded.model, loaded.adapter
    inputs = _inputs(loaded)
    n = inputs["input_ids"].shape[1]
    modules = {
        "value": adapter.value_projection(model, 1),
        "attn:all": adapter.self_attention_module(model, 1),
        "ffn": adapter.ffn_activation_module(model, 1),
        "block_out": adapter.output_layer_norm(model, 1),
    }
    with torch.no_grad(), capture(modules) as seen:
        outputs = adapter.encoder(model)(**inputs, output_attentions=True, output_hidden_states=True)
    assert seen["value"].shape == (1, n, 32)
    assert seen["attn:all"][1].shape == (1, 4, n, n)
    torch.testing.assert_close(seen["attn:all"][1], outputs.attentions[1])
    assert seen["ffn"].shape == (1, n, 37)
    # the block output LayerNorm produces exactly the next hidden state
    torch.testing.assert_close(seen["block_out"], outputs.hidden_states[2])
    assert leftover_hooks(model) == []


def test_block_output_is_hidden_state(loaded):
    model, adapter = loaded.model, loaded.adapter
    inputs = _inputs(loaded)
    with torch.no_grad(), capture({"b0": adapter.block(model, 0)}) as seen:
        outputs = adapter.encoder(model)(**inputs, output_hidden_states=True)
    torch.testing.assert_close(seen["b0"], outputs.hidden_states[1])


def test_embedding_module_output_is_layer_zero(loaded, tmp_path: Path):
    model, adapter = loaded.model, loaded.adapter
    inputs = _inputs(loaded)
    with torch.no_grad(), capture({"emb": adapter.embedding_module(model)}) as seen:
        outputs = adapter.encoder(model)(**inputs, output_hidden_states=True)
    if loaded.config.model_type == "electra":
        assert seen["emb"].shape[-1] == 16  # ELECTRA projects embeddings up to the hidden size
    else:
        torch.testing.assert_close(seen["emb"], outputs.hidden_states[0])
