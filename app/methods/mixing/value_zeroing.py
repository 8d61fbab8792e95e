"""Value Zeroing: how much each token's output changes when one context token's value vector is removed.

Mohebbi, Zuidema, Chrupała, Alishahi, "Quantifying Context Mixing in Transformers", EACL 2023,
https://aclanthology.org/2023.eacl-main.245/

For layer l with clean input x, zero token j's value vectors in every head (after the value projection, so
the bias is zeroed too), keep queries, keys and attention weights unchanged, recompute the layer output of
every token i: ``C[l, i, j] = 1 - cos(output_i with v_j zeroed, clean output_i)``. Rows are normalised to
sum to 1 and chained over layers without an identity term (R_1 = C_1, R_l = C_l @ R_{l-1}).

Exact and fast: zeroing v_j only removes ``sum_h A[h, i, j] * v_j^h W_O^h`` from token i's attention output,
so all N x N zeroings of a layer share one clean forward pass and only the position-wise rest of the layer
(residual, LayerNorm, feed-forward, LayerNorm) is recomputed, batched over (i, j) pairs.
Output: ``layers`` [layer, query, key] (rows sum to 1), ``rollout`` [query, key], ``raw`` before normalising.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import BaseModel
from torch import nn

from app.methods.mixing.common import (
    CleanPass,
    LayerwiseMixing,
    key_chunks,
    project_values,
    weighted_contributions,
)
from app.modeling.loading import LoadedModel

Tail = Callable[[torch.Tensor], torch.Tensor]


class ValueZeroing(LayerwiseMixing):
    """Value Zeroing context mixing for every layer, with its rollout."""

    name: ClassVar[str] = "value_zeroing"
    title: ClassVar[str] = "Value Zeroing"
    citation: ClassVar[str] = "Mohebbi, Zuidema, Chrupała & Alishahi, EACL 2023"
    summary: ClassVar[str] = (
        "How much each token's representation depends on each other token, found by zeroing that "
        "token's value vector."
    )
    # Each layer re-runs the block's tail modules, which other methods may be hooking: keep the model lock.
    batchable: ClassVar[bool] = False

    def passes(self, params: BaseModel, tokens: int, layers: int) -> float:
        """Each block's tail re-run once per zeroed token: about one pass per token."""
        return 1.0 + tokens

    def layer_scores(self, loaded: LoadedModel, clean: CleanPass, layer: int) -> torch.Tensor:
        tail = layer_tail(loaded, layer)
        w_o = loaded.adapter.attention_output_projection(loaded.model, layer).weight
        return _value_zeroing_layer(
            clean.inputs[layer],
            clean.attentions[layer],
            clean.values[layer],
            clean.attention_outputs[layer],
            w_o,
            tail,
            tail.intermediate_size,
        )


@dataclass
class LayerTail:
    """The position-wise rest of a post-LN block: LN1(attention + residual) -> FFN -> LN2(FFN + residual)."""

    ln1: nn.Module
    ffn_in: nn.Linear
    act: nn.Module
    ffn_out: nn.Linear
    ln2: nn.Module

    @property
    def intermediate_size(self) -> int:
        return self.ffn_in.out_features

    def __call__(self, pre_norm: torch.Tensor) -> torch.Tensor:
        mixed = self.ln1(pre_norm)
        return self.ln2(self.ffn_out(self.act(self.ffn_in(mixed))) + mixed)


def layer_tail(loaded: LoadedModel, layer: int) -> LayerTail:
    """The tail of block ``layer`` of the loaded model."""
    model, adapter = loaded.model, loaded.adapter
    return LayerTail(
        ln1=adapter.attention_layer_norm(model, layer),
        ffn_in=adapter.ffn_input_projection(model, layer),
        act=adapter.ffn_activation_module(model, layer),
        ffn_out=adapter.ffn_output_projection(model, layer),
        ln2=adapter.output_layer_norm(model, layer),
    )


def _value_zeroing_layer(
    x: torch.Tensor,
    attention: torch.Tensor,
    values: torch.Tensor,
    attention_output: torch.Tensor,
    w_o: torch.Tensor,
    tail: Tail,
    intermediate_size: int,
) -> torch.Tensor:
    """``1 - cos`` for every (query i, zeroed key j) of one layer, unnormalised: [query, key].

    x [token, hidden]: layer input; attention [head, query, key]; values [token, all_head] (bias included);
    attention_output [token, hidden] = W_O context + b_O; w_o [hidden, all_head]; tail: the rest of the block,
    whose widest activation has ``intermediate_size`` features (it bounds the chunk of keys done at once).
    """
    tokens = x.shape[0]
    projected = project_values(values, w_o, attention.shape[0])  # [head, key, hidden]
    pre_norm = attention_output + x  # [token, hidden]
    clean = tail(pre_norm)
    scores = torch.empty(tokens, tokens, dtype=torch.float64, device=x.device)
    for keys in key_chunks(tokens, max(intermediate_size, x.shape[1])):
        zeroed = tail(pre_norm[:, None, :] - weighted_contributions(attention, projected, keys))
        # cosines near 1: float64 keeps 1 - cos accurate (float32 resolves it only to ~6e-8)
        cosine = torch.nn.functional.cosine_similarity(zeroed.double(), clean[:, None, :].double(), dim=-1)
        scores[:, keys] = 1.0 - cosine
    return scores
