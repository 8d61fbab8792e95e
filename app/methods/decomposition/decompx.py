"""DecompX: every hidden state as a sum of one vector per input token, carried through the whole encoder.

Modarressi, Fayyaz, Aghazadeh, Yaghoobzadeh & Pilehvar, "DecompX: Explaining Transformers Decisions by
Propagating Token Decomposition", ACL 2023, https://arxiv.org/abs/2306.02873 (released code:
github.com/mohsenfayyaz/DecompX). The paper's choices, as implemented here (its default configuration:
``include_biases``, ``bias_decomp_type='absdot'``, ``include_LN1``, ``include_FFN``,
``FFN_approx_type='GeLU_ZO'``, ``include_LN2``, ``include_classifier_w_pooler``, ``tanh_approx_type='ZO'``):

* start: the hidden state entering the first block (after the embeddings' LayerNorm, and ELECTRA's
  projection) is token i's own vector: ``x_i = c_ii``, every other ``c_ik = 0``;
* attention: ``sum_h A^h[i, j] W_O^h W_V^h c_jk`` with the real attention probabilities, plus the residual;
  the biases ``W_O b_V + b_O`` (b_V passes whole because attention rows sum to 1) are split among the sources;
  (the released code, at the first block only, leaves b_V inside each value vector instead);
* LayerNorm (both): each vector minus its own mean, times gamma / sigma_i, with sigma_i from the real input
  (the decomposition is linear given sigma); beta is a bias, split among the sources;
* feed-forward: ``W_1 c`` with b_1 split, times the real slope ``act(z)/z`` of the real pre-activation z
  (zero-order linearisation, GeLU_ZO), ``W_2`` with b_2 split, plus the residual. Because the shares of b_1
  sum to 1, the linearised vectors of token i sum to act(z_i) exactly: the linearisation moves nothing in
  the total, only how it is divided; ``LayerCheck.ffn_component_gap`` reports how far each vector's
  act(u)/u differs from the shared slope (0 for a linear FFN);
* biases: ``absdot`` (each bias split in proportion to |<c_ik, b>|, the paper's default) or ``bias_token``
  (kept apart as a bias part); see ``shares``;
* the head: see ``heads``.

At every block the vectors of token i plus its bias part sum to the real hidden state (``states`` when
asked; tests check it against the model's own output). Memory: the state is [token, token + 1, hidden] in
float32 (float64 for float64 models); each block runs over chunks of source tokens, so the temporaries stay
at [token, chunk, intermediate] with ``chunk * token * intermediate <= CHUNK_ELEMENTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from app.methods.callbacks import between_batches
from app.methods.decomposition.layer import (
    BlockDecomposition,
    LayerCheck,
    layer_weights,
    source_chunks,
)
from app.methods.decomposition.shares import BiasMode
from app.methods.decomposition.trace import Trace, trace_pass
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel

# Floats of the largest temporary per chunk ([token, chunk, intermediate]): 2**21 is 8 MiB in float32; the
# activation function makes a few such temporaries, and a smaller chunk does not slow the matrix products
# (at N = 512 a chunk of 2 sources is still a [1024, hidden] x [hidden, intermediate] product).
CHUNK_ELEMENTS = 2**21


@dataclass
class Decomposition:
    """The decomposition after the last block, the real pass it linearised and per-block checks."""

    state: torch.Tensor  # [target, source + 1, hidden]; the last source column is the bias part
    trace: Trace
    checks: list[LayerCheck]
    states: list[torch.Tensor] = field(default_factory=list)  # per block (only when ``keep_states``)
    norms: list[torch.Tensor] = field(default_factory=list)  # per block [target, source + 1] (``keep_norms``)


def decomposition_dtype(loaded: LoadedModel) -> torch.dtype:
    """float64 for float64 models (exactness tests), float32 otherwise (half-precision models included)."""
    return torch.float64 if loaded.dtype == torch.float64 else torch.float32


def identity_state(hidden: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[token, token + 1, hidden] with token i's vector in column i and nothing else (no bias part)."""
    tokens = hidden.shape[0]
    state = torch.zeros(tokens, tokens + 1, hidden.shape[1], dtype=dtype, device=hidden.device)
    state[torch.arange(tokens), torch.arange(tokens)] = hidden.to(dtype)
    return state


def run_block(
    loaded: LoadedModel, trace: Trace, layer: int, state: torch.Tensor, mode: BiasMode
) -> LayerCheck:
    """Apply block ``layer`` to ``state`` in place."""
    tokens = state.shape[0]
    width = max(loaded.num_units, loaded.hidden_size)
    chunks = source_chunks(state.shape[1], tokens * width, CHUNK_ELEMENTS)
    weights = layer_weights(loaded, layer, state.dtype)
    return BlockDecomposition(weights, trace.layers[layer], mode, chunks).apply(state)


@torch.no_grad()
def decompose(
    loaded: LoadedModel,
    encoded: Encoded,
    *,
    mode: BiasMode = "absdot",
    keep_states: bool = False,
    keep_norms: bool = False,
    trace: Trace | None = None,
) -> Decomposition:
    """Propagate the token decomposition of ``encoded`` (one unpadded input) through every block."""
    trace = trace or trace_pass(loaded, encoded)
    state = identity_state(trace.start, decomposition_dtype(loaded))
    result = Decomposition(state=state, trace=trace, checks=[])
    for layer in range(loaded.num_layers):
        if layer:
            between_batches()  # only weights are read from here on: waiting requests may use the model
        check = run_block(loaded, trace, layer, state, mode)
        check.sum_error, check.scale = sum_check(state, trace.layers[layer].output)
        result.checks.append(check)
        if keep_states:
            result.states.append(state.clone())
        if keep_norms:
            result.norms.append(state.norm(dim=-1))
    return result


def sum_check(state: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
    """max |sum of a token's vectors and bias part - its real hidden state|, and max sum |vectors| (the size
    of the terms summed, for a rounding bound), over chunks of target rows: no full-size temporary."""
    error, scale = 0.0, 0.0
    for rows in source_chunks(state.shape[0], state.shape[1] * state.shape[2], CHUNK_ELEMENTS):
        part = state[rows]
        error = max(error, float((part.sum(dim=1) - real[rows].to(part.dtype)).abs().max()))
        scale = max(scale, float(part.abs().sum(dim=1).max()))
    return error, scale


@torch.no_grad()
def single_block(loaded: LoadedModel, trace: Trace, layer: int, mode: BiasMode) -> torch.Tensor:
    """Vector norms [target, source + 1] of block ``layer`` alone, started from its real input as identity."""
    between_batches()  # after the traced pass only weights are read: waiting requests may use the model
    start = trace.start if layer == 0 else trace.layers[layer - 1].output
    state = identity_state(start, decomposition_dtype(loaded))
    run_block(loaded, trace, layer, state, mode)
    return state.norm(dim=-1)
