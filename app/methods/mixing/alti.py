"""ALTI: Aggregation of Layer-wise Token-to-token Interactions.

Ferrando, Gállego, Costa-jussà, "Measuring the Mixing of Contextual Information in the Transformer",
EMNLP 2022, https://arxiv.org/abs/2203.04212

The attention block's output (multi-head attention, residual, LayerNorm) is split exactly into one vector
per input token: with the LayerNorm's scale 1/sigma_i fixed by the real input of token i, LN is affine and
``y_i = sum_j T_i(x_j) + b_i`` with ``T_i(x_j) = gamma * (z_ij - mean(z_ij)) / sigma_i`` and
``z_ij = sum_h A[h, i, j] v_j^h W_O^h + [i == j] x_i`` (b_i collects b_O and beta, which belong to no token).
Contribution ``c_ij = max(0, ||y_i||_1 - ||y_i - T_i(x_j)||_1)``, rows normalised to sum to 1 and chained
over layers without an identity term (the residual is already inside). Our LayerNorm scale is the exact
``sqrt(var + eps)`` of the model (so the decomposition sums to the real output). The feed-forward block is
not decomposed, as in the paper. Output: ``layers`` [layer, query, key], ``rollout``, ``raw`` (c before
normalising).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel

from app.methods.mixing.common import (
    CleanPass,
    LayerwiseMixing,
    key_chunks,
    project_values,
    weighted_contributions,
)
from app.modeling.loading import LoadedModel


class Alti(LayerwiseMixing):
    """ALTI token-to-token contributions through the attention block, with their rollout."""

    name: ClassVar[str] = "alti"
    title: ClassVar[str] = "ALTI"
    citation: ClassVar[str] = "Ferrando, Gállego & Costa-jussà, EMNLP 2022"
    summary: ClassVar[str] = (
        "Each token's share in every other token's representation through the whole attention block, "
        "rolled out over the layers."
    )

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float:
        """A token-by-token decomposition of each attention block: grows with N (49 passes at N = 128)."""
        return 1.0 + 0.4 * tokens

    def layer_scores(self, loaded: LoadedModel, clean: CleanPass, layer: int) -> torch.Tensor:
        model, adapter = loaded.model, loaded.adapter
        return _alti_layer(
            clean.inputs[layer],
            clean.attentions[layer],
            clean.values[layer],
            clean.attention_outputs[layer],
            adapter.attention_output_projection(model, layer).weight,
            adapter.attention_layer_norm(model, layer),
        )


def token_decomposition(
    x: torch.Tensor,
    attention: torch.Tensor,
    values: torch.Tensor,
    attention_output: torch.Tensor,
    w_o: torch.Tensor,
    layer_norm: torch.nn.LayerNorm,
    keys: slice,
) -> torch.Tensor:
    """T_i(x_j) for all queries i and the keys j in ``keys``: [query, chunk, hidden] (float64).

    x [token, hidden]: layer input; attention [head, query, key]; values [token, all_head]; attention_output
    [token, hidden] = W_O context + b_O; layer_norm: the LayerNorm after the attention block.
    """
    pre_norm = (attention_output + x).double()
    sigma = torch.sqrt(pre_norm.var(dim=-1, unbiased=False, keepdim=True) + layer_norm.eps)  # [query, 1]
    projected = project_values(values, w_o, attention.shape[0])
    mixed = weighted_contributions(attention, projected, keys).double()  # [query, chunk, hidden]
    positions = torch.arange(x.shape[0], device=x.device)
    is_self = (positions[:, None] == positions[None, keys]).to(mixed.dtype)  # [query, chunk]
    mixed = mixed + is_self[..., None] * x.double()[:, None, :]
    centred = mixed - mixed.mean(dim=-1, keepdim=True)
    return centred * layer_norm.weight.double() / sigma[:, None, :]


def _alti_layer(
    x: torch.Tensor,
    attention: torch.Tensor,
    values: torch.Tensor,
    attention_output: torch.Tensor,
    w_o: torch.Tensor,
    layer_norm: torch.nn.LayerNorm,
) -> torch.Tensor:
    """Unnormalised ALTI contributions [query, key] of one layer."""
    tokens = x.shape[0]
    output = layer_norm(attention_output + x).double()  # y_i, the real block output (biases included)
    size = output.abs().sum(dim=-1)  # ||y_i||_1
    contributions = torch.empty(tokens, tokens, dtype=torch.float64, device=x.device)
    for keys in key_chunks(tokens, x.shape[1]):
        parts = token_decomposition(x, attention, values, attention_output, w_o, layer_norm, keys)
        distance = (output[:, None, :] - parts).abs().sum(dim=-1)  # ||y_i - T_i(x_j)||_1
        contributions[:, keys] = torch.clamp(size[:, None] - distance, min=0.0)
    return contributions
