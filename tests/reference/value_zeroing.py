"""Slow, obvious Value Zeroing references (Mohebbi et al., EACL 2023) to check the fast implementation.

``per_layer``: as the published code does, re-run layer l once per zeroed token j (L x N layer calls).
``full_forward``: run the whole model once per token j, every layer zeroing v_j on its clean input.
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
    """The same scores from N whole-model passes: each layer gets its clean input and zeroes v_j."""
    model, adapter = loaded.model, loaded.adapter
    encoder = adapter.encoder(model)
    clean = encoder(**encoded.model_inputs(), output_hidden_states=True).hidden_states
    layers, tokens = loaded.num_layers, encoded.length
    scores = torch.zeros(layers, tokens, tokens, dtype=torch.float64)
    blocks = [adapter.block(model, layer) for layer in range(layers)]
    for position in range(tokens):
        zero = _zero_position(position)
        # every block restarts from its clean input and hands its clean output on
        restore = {blocks[layer]: (lambda _out, layer=layer: clean[layer + 1]) for layer in range(layers)}
        values = {adapter.value_projection(model, layer): zero for layer in range(layers)}
        with (
            patch(values),
            capture({f"b{layer}": blocks[layer] for layer in range(layers)}) as seen,
            patch(restore),
        ):
            handles = [
                block.register_forward_pre_hook(lambda _m, args, layer=layer: (clean[layer], *args[1:]))
                for layer, block in enumerate(blocks)
            ]
            try:
                encoder(**encoded.model_inputs())
            finally:
                for handle in handles:
                    handle.remove()
        for layer in range(layers):
            zeroed = seen[f"b{layer}"][0]
            scores[layer, :, position] = 1 - torch.cosine_similarity(
                zeroed.double(), clean[layer + 1][0].double(), dim=-1
            )
    return scores


def normalised(scores: torch.Tensor) -> torch.Tensor:
    return normalise_rows(scores)
