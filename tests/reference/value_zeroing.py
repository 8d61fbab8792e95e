"""Slow, obvious Value Zeroing references (Mohebbi et al., EACL 2023) to check the fast implementation.

``per_layer``: as the published code does, re-run layer l once per zeroed token j (L x N layer calls).
``full_forward``: run the whole model once per zeroed (layer, token) and read that layer's output.
"""

from __future__ import annotations

import torch

from app.methods.mixing.common import normalise_rows
from app.modeling.encoding import Encoded
from app.modeling.hooks import capture, patch
from app.modeling.loading import LoadedModel


def _zero_position(position: int):
    def zero(output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, position, :] = 0.0
        return output

    return zero


def _block_call(block: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    output = block(hidden)
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def per_layer(loaded: LoadedModel, encoded: Encoded) -> torch.Tensor:
    """Unnormalised ``1 - cos`` scores [layer, query, key], one layer call per (layer, token)."""
    model, adapter = loaded.model, loaded.adapter
    hidden = adapter.encoder(model)(**encoded.model_inputs(), output_hidden_states=True).hidden_states
    tokens = encoded.length
    scores = torch.zeros(loaded.num_layers, tokens, tokens, dtype=torch.float64)
    for layer in range(loaded.num_layers):
        block = adapter.block(model, layer)
        clean = _block_call(block, hidden[layer])[0]
        for position in range(tokens):
            with patch({adapter.value_projection(model, layer): _zero_position(position)}):
                zeroed = _block_call(block, hidden[layer])[0]
            scores[layer, :, position] = 1 - torch.cosine_similarity(zeroed.double(), clean.double(), dim=-1)
    return scores


@torch.no_grad()
def full_forward(loaded: LoadedModel, encoded: Encoded) -> torch.Tensor:
    """The same scores from L x N whole-model passes.

    For layer l and token j, run the model with v_j zeroed in layer l only and read layer l's output
    (layers below l are untouched, so its input is the clean one)."""
    model, adapter = loaded.model, loaded.adapter
    encoder = adapter.encoder(model)
    clean = encoder(**encoded.model_inputs(), output_hidden_states=True).hidden_states
    layers, tokens = loaded.num_layers, encoded.length
    scores = torch.zeros(layers, tokens, tokens, dtype=torch.float64)
    for layer in range(layers):
        block = adapter.block(model, layer)
        for position in range(tokens):
            with (
                patch({adapter.value_projection(model, layer): _zero_position(position)}),
                capture({"out": block}) as seen,
            ):
                encoder(**encoded.model_inputs())
            cosine = torch.cosine_similarity(seen["out"][0].double(), clean[layer + 1][0].double(), dim=-1)
            scores[layer, :, position] = 1 - cosine
    return scores


def normalised(scores: torch.Tensor) -> torch.Tensor:
    return normalise_rows(scores)
