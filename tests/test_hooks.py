"""Hook hygiene: hooks never outlive their block, even when the block or a method raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.methods import METHODS
from app.methods.probes.probe_set import ProbeSet
from app.methods.probes.structural_probe import ProbeContext
from app.modeling.encoding import encode
from app.modeling.hooks import capture, leftover_hooks, patch
from app.modeling.targets import bind_target


def test_capture_removes_hooks_after_exception(tiny_bert):
    value = tiny_bert.adapter.value_projection(tiny_bert.model, 0)
    with pytest.raises(RuntimeError), capture({"v": value}):
        assert value._forward_hooks
        raise RuntimeError("boom")
    assert leftover_hooks(tiny_bert.model) == []


def test_patch_replaces_output_and_cleans_up(tiny_bert):
    model, adapter = tiny_bert.model, tiny_bert.adapter
    inputs = tiny_bert.tokenizer("the cat sat", return_tensors="pt")
    value = adapter.value_projection(model, 0)
    with torch.no_grad():
        clean = adapter.encoder(model)(**inputs).last_hidden_state
        with patch({value: torch.zeros_like}), capture({"v": value}) as seen:
            patched = adapter.encoder(model)(**inputs).last_hidden_state
    assert torch.count_nonzero(seen["v"]) == 0
    assert not torch.allclose(clean, patched)
    assert leftover_hooks(model) == []


def test_patch_removes_hooks_when_forward_raises(tiny_bert):
    value = tiny_bert.adapter.value_projection(tiny_bert.model, 0)

    def explode(_output):
        raise ValueError("bad patch")

    inputs = tiny_bert.tokenizer("the cat", return_tensors="pt")
    with pytest.raises(ValueError), patch({value: explode}):
        tiny_bert.model(**inputs)
    assert leftover_hooks(tiny_bert.model) == []


def _target(loaded, method, encoded):
    if method.requires == "probe_set":  # a random probe set over every layer of the tiny model
        layers = list(range(loaded.num_layers + 1))
        rng = np.random.default_rng(0)
        shape = (len(layers), 4, loaded.hidden_size)
        probes = ProbeSet(
            "random",
            loaded.name,
            loaded.revision,
            layers,
            rng.normal(size=shape),
            rng.normal(size=shape),
            {},
            {},
        )
        return ProbeContext(probes)
    return bind_target(loaded, None, encoded) if method.requires == "target" else None


def _params(method):
    return method.Params(layer=1) if method.requires == "probe_set" else method.Params()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_hook_left_after_any_method(tiny_bert, name):
    method = METHODS[name]
    encoded = encode(tiny_bert.tokenizer, "the cat sat on the mat .", max_tokens=64)
    blocks = list(tiny_bert.adapter.block_list(tiny_bert.model))
    method.run(tiny_bert, encoded, _params(method), _target(tiny_bert, method, encoded))
    assert leftover_hooks(tiny_bert.model) == []
    assert list(tiny_bert.adapter.block_list(tiny_bert.model)) == blocks  # no block left swapped out
    assert all(parameter.grad is None for parameter in tiny_bert.model.parameters())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_hook_left_after_a_method_raises(tiny_bert, name):
    method = METHODS[name]
    encoded = encode(tiny_bert.tokenizer, "the cat sat on the mat .", max_tokens=64)
    target = _target(tiny_bert, method, encoded)
    encoded.input_ids = encoded.input_ids.float()  # the embedding lookup fails mid-method
    with pytest.raises(RuntimeError):
        method.run(tiny_bert, encoded, _params(method), target)
    assert leftover_hooks(tiny_bert.model) == []
