"""One encoder block applied to a token decomposition, in place, chunk by chunk over source tokens.

The state ``S`` [target, source + 1, hidden] holds, for every target token i, one vector per source token k
and the bias part (last column); ``S[i].sum(0)`` is token i's hidden state. With the real pass's attention,
LayerNorm scales and activation slopes fixed (``trace.LayerTrace``), every step of a block maps the vectors of
one source k to new vectors of the same source k, so the block runs over source chunks ``S[:, K]`` and never
materialises more than ``[target, chunk, intermediate]`` at once. The one exception is the bias split
(``shares.bias_shares``): each bias's shares depend on the dot products of *all* sources with that bias, so
each bias costs one sweep over the chunks (dot products only) before the next step can run; the feed-forward
bias b_2's dot products are pulled back to the FFN's input (``<W_2 (m * u), b_2> = <u, m * W_2^T b_2>``) so
the feed-forward itself runs once. Steps (Modarressi et al., ACL 2023, section 3):

1. attention: ``sum_h A^h[i, j] W_O^h W_V^h c_jk`` plus the residual ``c_ik``; bias ``W_O b_V + b_O`` split;
2. LayerNorm 1: ``gamma * (c - mean(c)) / sigma_i`` per vector with the real sigma_i; beta split;
3. feed-forward: ``W_1 c``, b_1 split, times the real slope ``act(z)/z`` (GeLU_ZO), ``W_2``, b_2 split,
   plus the residual;
4. LayerNorm 2 as in 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from app.methods.decomposition.shares import BiasMode, bias_shares
from app.methods.decomposition.trace import LayerTrace
from app.modeling.loading import LoadedModel


@dataclass
class LayerWeights:
    """The block's parameters in the decomposition's dtype (nn.Linear layout: weight [out, in])."""

    heads: int
    w_v: torch.Tensor
    w_o: torch.Tensor
    attention_bias: torch.Tensor  # W_O b_V + b_O: attention rows sum to 1, so b_V passes through whole
    gamma_1: torch.Tensor
    beta_1: torch.Tensor
    w_1: torch.Tensor
    b_1: torch.Tensor
    w_2: torch.Tensor
    b_2: torch.Tensor
    gamma_2: torch.Tensor
    beta_2: torch.Tensor
    activation: nn.Module


def layer_weights(loaded: LoadedModel, layer: int, dtype: torch.dtype) -> LayerWeights:
    """Gather block ``layer``'s parameters through the architecture adapter."""
    model, adapter = loaded.model, loaded.adapter
    value = adapter.value_projection(model, layer)
    output = adapter.attention_output_projection(model, layer)
    norm_1, norm_2 = adapter.attention_layer_norm(model, layer), adapter.output_layer_norm(model, layer)
    ffn_in, ffn_out = adapter.ffn_input_projection(model, layer), adapter.ffn_output_projection(model, layer)

    def cast(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to(dtype)

    return LayerWeights(
        heads=loaded.num_heads,
        w_v=cast(value.weight),
        w_o=cast(output.weight),
        attention_bias=cast(output.weight) @ cast(value.bias) + cast(output.bias),
        gamma_1=cast(norm_1.weight),
        beta_1=cast(norm_1.bias),
        w_1=cast(ffn_in.weight),
        b_1=cast(ffn_in.bias),
        w_2=cast(ffn_out.weight),
        b_2=cast(ffn_out.bias),
        gamma_2=cast(norm_2.weight),
        beta_2=cast(norm_2.bias),
        activation=adapter.ffn_activation_module(model, layer),
    )


@dataclass
class LayerCheck:
    """Exactness diagnostics of one block (see ``decompx`` for how they are read)."""

    ffn_sum_error: float  # max |sum over sources of the linearised FFN output - the real FFN output|
    ffn_component_gap: float  # sum |act(u) - m u| / sum |m u| over every source's FFN input u
    sum_error: float = 0.0  # max |sum over sources (bias part included) - the real block output|
    scale: float = 0.0  # max over tokens and dimensions of sum over sources |vector|


def source_chunks(sources: int, per_source: int, budget: int) -> list[slice]:
    """Slices of source columns such that ``chunk * per_source`` floats stay under ``budget``."""
    size = max(1, budget // max(per_source, 1))
    return [slice(start, start + size) for start in range(0, sources, size)]


def _attention(state: torch.Tensor, weights: LayerWeights, attention: torch.Tensor) -> torch.Tensor:
    """sum_h A^h W_O^h W_V^h c plus the residual, for a chunk [target, chunk, hidden] (no biases)."""
    tokens, chunk, _ = state.shape
    values = (state @ weights.w_v.T).view(tokens, chunk, weights.heads, -1)  # [j, k, head, head_size]
    mixed = torch.einsum("hij,jkhe->ikhe", attention.to(state.dtype), values)
    return mixed.reshape(tokens, chunk, -1) @ weights.w_o.T + state


def _normalise(state: torch.Tensor, gamma: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """LayerNorm without beta on every vector: gamma * (c - mean(c)) / sigma_i, sigma from the real pass."""
    return (state - state.mean(dim=-1, keepdim=True)) * gamma / sigma.to(state.dtype)[:, None, None]


# one step of a block on a chunk of sources: (vectors [target, chunk, hidden], its slice) -> new vectors
Step = Callable[[torch.Tensor, slice], torch.Tensor]


class BlockDecomposition:
    """Applies one block to a decomposition state in place (see the module docstring for the steps)."""

    def __init__(self, weights: LayerWeights, trace: LayerTrace, mode: BiasMode, chunks: list[slice]):
        self.weights, self.trace, self.mode, self.chunks = weights, trace, mode, chunks

    def _sweep(self, state: torch.Tensor, step: Step, *directions: torch.Tensor) -> list[torch.Tensor]:
        """Replace each chunk by ``step(chunk, K)``; return, per direction ([hidden] or [target, hidden]),
        the dots <new vector, direction> [target, source + 1]."""
        dots = [torch.empty(state.shape[:2], dtype=state.dtype, device=state.device) for _ in directions]
        for chunk in self.chunks:
            new = step(state[:, chunk], chunk)
            state[:, chunk] = new
            for found, direction in zip(dots, directions, strict=True):
                if direction.dim() == 2:  # one direction per target token
                    found[:, chunk] = torch.einsum("ikd,id->ik", new, direction)
                else:
                    found[:, chunk] = new @ direction
        return dots

    def apply(self, state: torch.Tensor) -> LayerCheck:
        w, t = self.weights, self.trace
        (dots,) = self._sweep(state, lambda c, _: _attention(c, w, t.attention), w.attention_bias)
        share = bias_shares(dots, self.mode)

        def norm_1(c: torch.Tensor, k: slice) -> torch.Tensor:
            return _normalise(c + share[:, k, None] * w.attention_bias, w.gamma_1, t.sigma_attention)

        (dots,) = self._sweep(state, norm_1, w.beta_1)
        beta_share = bias_shares(dots, self.mode)
        slope = t.ffn_scale.to(state.dtype)  # m_i = act(z_i) / z_i, [target, unit]
        pulled = slope * (w.b_2 @ w.w_2)  # m_i * W_2^T b_2, [target, unit]

        def add_beta(c: torch.Tensor, k: slice) -> torch.Tensor:
            return c + beta_share[:, k, None] * w.beta_1

        # <W_1 c, b_1> = <c, W_1^T b_1> and <W_2 (m * W_1 c), b_2> = <c, W_1^T (m * W_2^T b_2)>
        b1_dots, b2_dots = self._sweep(state, add_beta, w.b_1 @ w.w_1, pulled @ w.w_1)
        share_1 = bias_shares(b1_dots, self.mode)
        share_2 = bias_shares(b2_dots + share_1 * (pulled @ w.b_1)[:, None], self.mode)
        return self._feed_forward(state, share_1, share_2, slope)

    def _feed_forward(
        self, state: torch.Tensor, share_1: torch.Tensor, share_2: torch.Tensor, slope: torch.Tensor
    ) -> LayerCheck:
        w, t = self.weights, self.trace
        ffn_sum = torch.zeros_like(t.ffn_output, dtype=state.dtype)
        gap = torch.zeros((2,), dtype=torch.float64, device=state.device)

        def ffn(c: torch.Tensor, k: slice) -> torch.Tensor:
            # in place where possible: at most two [target, chunk, unit] tensors are alive at once
            units = torch.addcmul(c @ w.w_1.T, share_1[:, k, None], w.b_1)  # u_ik, [target, chunk, unit]
            activated = w.activation(units)
            units.mul_(slope[:, None, :])  # now m_i * u_ik, the linearised activation
            gap[0] += activated.sub_(units).abs_().sum().double()  # float32 per chunk, float64 across
            del activated
            gap[1] += units.abs().sum().double()
            out = torch.addcmul(units @ w.w_2.T, share_2[:, k, None], w.b_2)
            ffn_sum.add_(out.sum(dim=1))
            return _normalise(c + out, w.gamma_2, t.sigma_output)

        (dots,) = self._sweep(state, ffn, w.beta_2)
        share = bias_shares(dots, self.mode)
        for chunk in self.chunks:
            state[:, chunk] += share[:, chunk, None] * w.beta_2
        return LayerCheck(
            ffn_sum_error=float((ffn_sum - t.ffn_output.to(state.dtype)).abs().max()),
            ffn_component_gap=float(gap[0] / gap[1].clamp_min(torch.finfo(torch.float64).tiny)),
        )
