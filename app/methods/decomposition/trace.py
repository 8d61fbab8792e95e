"""The real forward pass DecompX linearises around: attention, LayerNorm scales and FFN pre-activations.

DecompX (Modarressi, Fayyaz, Aghazadeh, Yaghoobzadeh & Pilehvar, ACL 2023, https://arxiv.org/abs/2306.02873)
fixes every non-linear quantity at its value in the real pass (attention probabilities, each LayerNorm's
1/sigma, each activation's slope act(z)/z) so that the rest of the layer is linear in the token components.
This module records those quantities from one forward pass through the model's own modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from app.modeling.encoding import Encoded
from app.modeling.hooks import capture
from app.modeling.loading import LoadedModel


@dataclass
class LayerTrace:
    """What one block computed on the real input (batch dimension dropped)."""

    attention: torch.Tensor  # [head, query, key], the real attention probabilities
    sigma_attention: torch.Tensor  # [token], sqrt(var + eps) of the attention LayerNorm's input
    ffn_pre: torch.Tensor  # [token, unit], z = W_1 h + b_1 (the activation's input)
    ffn_scale: torch.Tensor  # [token, unit], act(z) / z (0 where z == 0, where act(0) = 0 anyway)
    ffn_output: torch.Tensor  # [token, hidden], W_2 act(z) + b_2
    sigma_output: torch.Tensor  # [token], sqrt(var + eps) of the output LayerNorm's input
    output: torch.Tensor  # [token, hidden], the block's output (the next hidden state)


@dataclass
class Trace:
    """The hidden state entering the first block and every block's real quantities."""

    start: torch.Tensor  # [token, hidden]
    layers: list[LayerTrace]


def layer_norm_sigma(pre_norm: torch.Tensor, layer_norm: nn.LayerNorm) -> torch.Tensor:
    """sqrt(var + eps) per token, the LayerNorm's divisor on its real input [token, hidden] -> [token]."""
    pre = pre_norm.double()
    return torch.sqrt(pre.var(dim=-1, unbiased=False) + layer_norm.eps).to(pre_norm.dtype)


def activation_scale(pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """The zero-order (``GeLU_ZO``) slope act(z)/z; 0 where z == 0 (act(0) = 0 for GELU, ReLU and tanh)."""
    safe = torch.where(pre == 0, torch.ones_like(pre), pre)
    return torch.where(pre == 0, torch.zeros_like(pre), post / safe)


@torch.no_grad()
def trace_pass(loaded: LoadedModel, encoded: Encoded) -> Trace:
    """One forward pass of the encoder on ``encoded`` (a single, unpadded input), recorded per block."""
    model, adapter = loaded.model, loaded.adapter
    layers = range(loaded.num_layers)
    modules = {f"o{layer}": adapter.attention_output_projection(model, layer) for layer in layers}
    modules |= {f"z{layer}": adapter.ffn_input_projection(model, layer) for layer in layers}
    modules |= {f"a{layer}": adapter.ffn_activation_module(model, layer) for layer in layers}
    with capture(modules) as seen:
        outputs = adapter.encoder(model)(
            **encoded.model_inputs(), output_attentions=True, output_hidden_states=True
        )
    hidden = [state[0] for state in outputs.hidden_states]
    traced = []
    for layer in layers:
        norm_1 = adapter.attention_layer_norm(model, layer)
        norm_2 = adapter.output_layer_norm(model, layer)
        pre_1 = seen[f"o{layer}"][0] + hidden[layer]
        pre, post = seen[f"z{layer}"][0], seen[f"a{layer}"][0]
        ffn_output = adapter.ffn_output_projection(model, layer)(post)
        pre_2 = ffn_output + norm_1(pre_1)
        traced.append(
            LayerTrace(
                attention=outputs.attentions[layer][0],
                sigma_attention=layer_norm_sigma(pre_1, norm_1),
                ffn_pre=pre,
                ffn_scale=activation_scale(pre, post),
                ffn_output=ffn_output,
                sigma_output=layer_norm_sigma(pre_2, norm_2),
                output=hidden[layer + 1],
            )
        )
    return Trace(start=hidden[0], layers=traced)
