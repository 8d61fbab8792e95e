"""DecompX as context mixing: how much of each token's representation every input token makes up, per layer.

Modarressi, Fayyaz, Aghazadeh, Yaghoobzadeh & Pilehvar, "DecompX: Explaining Transformers Decisions by
Propagating Token Decomposition", ACL 2023, https://arxiv.org/abs/2306.02873. The token decomposition of
``app.methods.decomposition.decompx`` (attention, both LayerNorms with the real 1/sigma, the feed-forward
block linearised at zero order, GeLU_ZO; biases split by |<vector, bias>|, ``absdot``, or kept apart,
``bias_token``) gives, for each token i, one vector per input token k; the contribution of k to i is the
vector's L2 norm, rows normalised to sum to 1 over the input tokens (the bias part is left out).

* ``rollout_layers`` / ``rollout``: the paper's aggregation. DecompX does not multiply per-layer matrices;
  it *propagates* the vectors, so the row of layer l is read from the decomposition carried from the input
  through layers 1..l (``aggregation='vector'`` in the released code);
* ``layers``: one block alone, started from its real input with each token owning its own vector (the
  identity decomposition), i.e. a whole-block (attention, FFN, both LayerNorms) version of ALTI's or
  GlobEnc's per-layer matrix; ``raw`` holds those norms before normalising.

The whole decomposition is recomputed per block for ``layers``, so this costs about twice the attribution.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel

from app.methods.attribution.decompx import DecompxParams
from app.methods.base import AnalysisMethod, Kind, Result, as_numpy
from app.methods.decomposition.decompx import decompose, single_block
from app.methods.decomposition.trace import trace_pass
from app.methods.mixing.common import MixingResult, normalise_rows
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


class DecompxMixing(AnalysisMethod):
    """DecompX token-to-token contributions: norms of the propagated and the one-block decompositions."""

    name: ClassVar[str] = "decompx_mixing"
    kind: ClassVar[Kind] = "mixing"
    version: ClassVar[int] = 1
    title: ClassVar[str] = "DecompX mixing"
    citation: ClassVar[str] = "Modarressi, Fayyaz, Aghazadeh, Yaghoobzadeh & Pilehvar, ACL 2023"
    summary: ClassVar[str] = (
        "Each token's share in every other token's representation, carried through whole layers "
        "(attention, feed-forward, LayerNorms)."
    )
    Params: ClassVar[type[BaseModel]] = DecompxParams
    result_type: ClassVar[type[Result]] = MixingResult

    def passes(self, params: DecompxParams, tokens: int, layers: int) -> float:
        """The propagated decomposition and one block at a time again: about twice the attribution."""
        return 1.0 + 2.8 * tokens

    @torch.no_grad()
    def run(
        self, loaded: LoadedModel, encoded: Encoded, params: DecompxParams, target: BoundTarget | None
    ) -> MixingResult:
        trace = trace_pass(loaded, encoded)
        raw = torch.stack(
            [single_block(loaded, trace, layer, params.bias)[:, :-1] for layer in range(loaded.num_layers)]
        )
        carried = decompose(loaded, encoded, mode=params.bias, keep_norms=True, trace=trace)
        chained = normalise_rows(torch.stack([norms[:, :-1] for norms in carried.norms]))
        return MixingResult(
            layers=as_numpy(normalise_rows(raw)),
            rollout=as_numpy(chained[-1]),
            rollout_layers=as_numpy(chained),
            raw=as_numpy(raw),
        )
