"""Attention norm: the size of what each context token actually adds, not just its attention weight.

Kobayashi, Kuribayashi, Yokoi, Inui, "Attention is Not Only a Weight: Analyzing Transformers with Vector
Norms", EMNLP 2020, https://arxiv.org/abs/2004.10102
``||sum_h alpha^h_ij f^h(x_j)||`` with ``f^h(x_j) = (x_j W_V^h + b_V^h) W_O^h`` (the multi-head norm of the
paper; the output bias b_O belongs to no token and is left out). ``raw`` holds the norms; ``layers`` the
rows normalised to sum to 1 so that they can be chained into a rollout (our addition, for comparison).
Output: ``layers`` [layer, query, key], ``rollout`` [query, key], ``raw`` [layer, query, key].
"""

from __future__ import annotations

from typing import ClassVar

import torch

from app.methods.mixing.common import (
    CleanPass,
    LayerwiseMixing,
    key_chunks,
    project_values,
    weighted_contributions,
)
from app.modeling.loading import LoadedModel


class AttentionNorm(LayerwiseMixing):
    """Norm-based context mixing ||alpha f(x)|| summed over heads (Kobayashi et al. 2020)."""

    name: ClassVar[str] = "attention_norm"
    title: ClassVar[str] = "Attention norm ‖αf(x)‖"
    citation: ClassVar[str] = "Kobayashi, Kuribayashi, Yokoi & Inui, EMNLP 2020"
    summary: ClassVar[str] = (
        "Attention weighted by the size of what each token sends (‖αf(x)‖): a token that draws "
        "attention but sends little counts little."
    )

    def layer_scores(self, loaded: LoadedModel, clean: CleanPass, layer: int) -> torch.Tensor:
        w_o = loaded.adapter.attention_output_projection(loaded.model, layer).weight
        return _attention_norm_layer(clean.attentions[layer], clean.values[layer], w_o)


def _attention_norm_layer(attention: torch.Tensor, values: torch.Tensor, w_o: torch.Tensor) -> torch.Tensor:
    """||sum_h A[h, i, j] v_j^h W_O^h|| for every (query i, key j): [query, key] in float64."""
    tokens = attention.shape[-1]
    projected = project_values(values, w_o, attention.shape[0])
    norms = torch.empty(tokens, tokens, dtype=torch.float64, device=values.device)
    for keys in key_chunks(tokens, w_o.shape[0]):
        norms[:, keys] = torch.linalg.vector_norm(
            weighted_contributions(attention, projected, keys).double(), dim=-1
        )
    return norms
