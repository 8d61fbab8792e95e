"""Attention rollout: head-averaged attention mixed with the residual connection, chained over layers.

Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020, https://arxiv.org/abs/2005.00928
Per layer ``0.5 * A + 0.5 * I`` (A = attention averaged over heads), rows renormalised; rollout
R_1 = Ã_1, R_l = Ã_l @ R_{l-1}.
Output: ``layers`` [layer, query, key] (rows sum to 1), ``rollout`` [query, key].
"""

from __future__ import annotations

from typing import ClassVar

import torch

from app.methods.mixing.common import LayerwiseMixing, MixingResult, mixing_result, normalise_rows
from app.modeling.forward import CleanPass
from app.modeling.loading import LoadedModel


class AttentionRollout(LayerwiseMixing):
    """Attention rollout with the identity term for the residual connection."""

    name: ClassVar[str] = "attention_rollout"
    title: ClassVar[str] = "Attention rollout"
    citation: ClassVar[str] = "Abnar & Zuidema, ACL 2020"
    summary: ClassVar[str] = (
        "Attention chained through the layers, residual included: which input tokens reach each "
        "position by the last layer."
    )

    @torch.no_grad()
    def from_pass(self, loaded: LoadedModel, clean: CleanPass) -> MixingResult:
        mean = torch.stack(clean.attentions).double().mean(dim=1)  # [layer, query, key]
        return mixing_result(_with_residual(mean))


def _with_residual(mean_attention: torch.Tensor) -> torch.Tensor:
    """0.5 * A + 0.5 * I per layer, rows renormalised: [layer, query, key]."""
    identity = torch.eye(mean_attention.shape[-1], dtype=mean_attention.dtype, device=mean_attention.device)
    return normalise_rows(0.5 * mean_attention + 0.5 * identity)
