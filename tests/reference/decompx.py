"""Reference DecompX, written the slow, obvious way: every step on the full [token, token + 1, hidden] tensor,
each bias split by the dot products of the vectors it is added to (the released code's ``bias_decomposer``),
the real pass's quantities recomputed here from the model's own hidden states and attentions (no hooks).

Modarressi et al., "DecompX", ACL 2023, https://arxiv.org/abs/2306.02873. Used to check the chunked
implementation (which pulls the feed-forward biases' dot products back to the FFN input) in float64.
"""

from __future__ import annotations

import torch

from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel


def absdot(vectors: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """vectors [target, source + 1, width] plus bias split by |<vector, bias>| over the token columns."""
    weights = (vectors @ bias).abs()
    weights[:, -1] = 0
    total = weights.sum(dim=-1, keepdim=True)
    shares = torch.where(total > 0, weights / torch.where(total > 0, total, 1), 0)
    shares[:, -1] = torch.where(total[:, 0] > 0, 0.0, 1.0)
    return vectors + shares[..., None] * bias


def _layer_norm(vectors: torch.Tensor, pre: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    sigma = torch.sqrt(pre.var(dim=-1, unbiased=False) + norm.eps)
    centred = vectors - vectors.mean(dim=-1, keepdim=True)
    return absdot(centred * norm.weight / sigma[:, None, None], norm.bias)


@torch.no_grad()
def reference_states(loaded: LoadedModel, encoded: Encoded) -> list[torch.Tensor]:
    """The decomposition after every block, [token, token + 1, hidden] each (model dtype)."""
    model, adapter = loaded.model, loaded.adapter
    out = adapter.encoder(model)(**encoded.model_inputs(), output_attentions=True, output_hidden_states=True)
    start = out.hidden_states[0][0]
    tokens, heads = start.shape[0], loaded.num_heads
    state = torch.zeros(tokens, tokens + 1, start.shape[1], dtype=start.dtype)
    state[range(tokens), range(tokens)] = start
    states = []
    for layer in range(loaded.num_layers):
        x, attention = out.hidden_states[layer][0], out.attentions[layer][0]
        value = adapter.value_projection(model, layer)
        proj = adapter.attention_output_projection(model, layer)
        norm_1, norm_2 = adapter.attention_layer_norm(model, layer), adapter.output_layer_norm(model, layer)
        ffn_in = adapter.ffn_input_projection(model, layer)
        ffn_out = adapter.ffn_output_projection(model, layer)
        act = adapter.ffn_activation_module(model, layer)
        # the real pass
        per_head = value(x).view(tokens, heads, -1)
        context = torch.einsum("hij,jhe->ihe", attention, per_head).reshape(tokens, -1)
        pre_1 = proj(context) + x
        h_1 = norm_1(pre_1)
        z = ffn_in(h_1)
        slope = act(z) / z
        pre_2 = ffn_out(act(z)) + h_1
        # the decomposition
        values = (state @ value.weight.T).view(tokens, tokens + 1, heads, -1)
        mixed = torch.einsum("hij,jkhe->ikhe", attention, values).reshape(tokens, tokens + 1, -1)
        mixed = absdot(mixed @ proj.weight.T + state, proj.weight @ value.bias + proj.bias)
        after_1 = _layer_norm(mixed, pre_1, norm_1)
        units = absdot(after_1 @ ffn_in.weight.T, ffn_in.bias) * slope[:, None, :]
        ffn = absdot(units @ ffn_out.weight.T, ffn_out.bias)
        state = _layer_norm(after_1 + ffn, pre_2, norm_2)
        states.append(state)
    return states
