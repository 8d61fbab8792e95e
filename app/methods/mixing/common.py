"""Shared pieces of context-mixing methods: the result type, row normalisation, rollout, layerwise base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from app.methods.base import AnalysisMethod, Kind, NoParams, Result, as_numpy
from app.modeling.encoding import Encoded
from app.modeling.forward import CleanPass, clean_pass
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


@dataclass
class MixingResult(Result):
    """Token-to-token mixing per layer. Rows are queries (the token being updated), columns keys."""

    layers: np.ndarray  # [layer, query, key], each row sums to 1 (or is all zero)
    rollout: np.ndarray  # [query, key], the layers chained from the first to the last
    rollout_layers: np.ndarray  # [layer, query, key], the chain up to each layer
    raw: np.ndarray | None = None  # [layer, query, key] before row normalisation, when it differs


def normalise_rows(matrix: torch.Tensor) -> torch.Tensor:
    """Divide each row by its sum; an all-zero row stays all zero instead of dividing by zero."""
    sums = matrix.sum(dim=-1, keepdim=True)
    return matrix / torch.where(sums == 0, torch.ones_like(sums), sums)


def rollout(layers: torch.Tensor) -> torch.Tensor:
    """Chain per-layer mixing: R_1 = C_1, R_l = C_l @ R_{l-1}. Returns [layer, query, key]."""
    chained = [layers[0]]
    for matrix in layers[1:]:
        chained.append(matrix @ chained[-1])
    return torch.stack(chained)


def mixing_result(layers: torch.Tensor, raw: torch.Tensor | None = None) -> MixingResult:
    """Package row-normalised per-layer matrices [layer, query, key] with their rollout."""
    chained = rollout(layers.double())
    return MixingResult(
        layers=as_numpy(layers),
        rollout=as_numpy(chained[-1]),
        rollout_layers=as_numpy(chained),
        raw=None if raw is None else as_numpy(raw),
    )


# Upper bound on the floats materialised at once when looping over chunks of keys ([query, chunk, width]).
CHUNK_ELEMENTS = 2**25


def key_chunks(tokens: int, width: int) -> list[slice]:
    """Slices of key positions such that [tokens, chunk, width] stays under ``CHUNK_ELEMENTS``."""
    chunk = max(1, CHUNK_ELEMENTS // (tokens * width))
    return [slice(start, start + chunk) for start in range(0, tokens, chunk)]


def project_values(values: torch.Tensor, w_o: torch.Tensor, heads: int) -> torch.Tensor:
    """``v_j^h W_O^h`` for every head and token: [head, token, hidden].

    values [token, all_head] (value projection output, bias included); w_o [hidden, all_head]. This is what
    token j adds, through head h, to another token's attention output per unit of attention weight.
    """
    tokens, all_head = values.shape
    head_size = all_head // heads
    per_head = values.view(tokens, heads, head_size)
    return torch.einsum("jhk,dhk->hjd", per_head, w_o.view(w_o.shape[0], heads, head_size))


def weighted_contributions(attention: torch.Tensor, projected: torch.Tensor, keys: slice) -> torch.Tensor:
    """``sum_h A[h, i, j] v_j^h W_O^h`` for all queries i and keys j in ``keys``: [query, chunk, hidden]."""
    return torch.einsum("hij,hjd->ijd", attention[:, :, keys], projected[:, keys])


class LayerwiseMixing(AnalysisMethod):
    """Base of mixing methods that score every (query, key) pair of each layer from one clean pass.

    Subclasses set ``name``, ``title`` and ``citation`` and implement ``layer_scores``; ``run`` stacks the
    layers, normalises rows and rolls them out.
    """

    kind: ClassVar[Kind] = "mixing"
    version: ClassVar[int] = 1
    # True when ``from_pass`` needs nothing but the clean pass and the weights (no hooks, no module calls),
    # so the server can batch the pass with other requests and compute the rest outside the model lock.
    batchable: ClassVar[bool] = True
    Params: ClassVar[type[NoParams]] = NoParams
    result_type: ClassVar[type[Result]] = MixingResult

    def layer_scores(self, loaded: LoadedModel, clean: CleanPass, layer: int) -> torch.Tensor:
        """Unnormalised, non-negative scores [query, key] of one layer."""
        raise NotImplementedError

    @torch.no_grad()
    def run(
        self, loaded: LoadedModel, encoded: Encoded, params: NoParams, target: BoundTarget | None
    ) -> MixingResult:
        return self.from_pass(loaded, clean_pass(loaded, encoded))

    @torch.no_grad()
    def from_pass(self, loaded: LoadedModel, clean: CleanPass) -> MixingResult:
        """The result from a clean pass already computed (by the server's micro-batcher, for instance)."""
        raw = torch.stack([self.layer_scores(loaded, clean, layer) for layer in range(loaded.num_layers)])
        return mixing_result(normalise_rows(raw), raw)
