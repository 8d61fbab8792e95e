"""Raw self-attention weights, per layer and head, and their mean over heads.

The attention probabilities softmax(QK^T / sqrt(d)) of every head (Vaswani et al., "Attention Is All You
Need", NeurIPS 2017, https://arxiv.org/abs/1706.03762), as visualised by Vig, "A Multiscale Visualization
of Attention in the Transformer Model" (ACL demos 2019, https://arxiv.org/abs/1906.05714).
Output: ``layers`` [layer, head, query, key] and ``mean`` [layer, query, key]; every row sums to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from app.methods.base import AnalysisMethod, Kind, NoParams, Result, as_numpy
from app.modeling.encoding import Encoded
from app.modeling.forward import CleanPass
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


@dataclass
class AttentionResult(Result):
    layers: np.ndarray  # [layer, head, query, key]
    mean: np.ndarray  # [layer, query, key]


class Attention(AnalysisMethod):
    """Attention weights of every head in every layer, from one eager forward pass."""

    name: ClassVar[str] = "attention"
    kind: ClassVar[Kind] = "mixing"
    version: ClassVar[int] = 1
    title: ClassVar[str] = "Raw attention"
    citation: ClassVar[str] = "Vaswani et al., NeurIPS 2017; Vig, ACL 2019 (demos)"
    summary: ClassVar[str] = (
        "How strongly each token attends to each other token, per layer and head (the weights only, "
        "not what they carry)."
    )
    batchable: ClassVar[bool] = True
    Params: ClassVar[type[NoParams]] = NoParams
    result_type: ClassVar[type[Result]] = AttentionResult

    @torch.no_grad()
    def run(
        self, loaded: LoadedModel, encoded: Encoded, params: NoParams, target: BoundTarget | None
    ) -> AttentionResult:
        outputs = loaded.adapter.encoder(loaded.model)(**encoded.model_inputs(), output_attentions=True)
        return _attention_result(torch.stack([layer[0] for layer in outputs.attentions]))

    def from_pass(self, loaded: LoadedModel, clean: CleanPass) -> AttentionResult:
        """The result from a clean pass already computed (by the server's micro-batcher, for instance)."""
        return _attention_result(torch.stack(clean.attentions))


def _attention_result(weights: torch.Tensor) -> AttentionResult:
    """Package [layer, head, query, key] probabilities with their head mean."""
    return AttentionResult(layers=as_numpy(weights), mean=as_numpy(weights.float().mean(dim=1)))
