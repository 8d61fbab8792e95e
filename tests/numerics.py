"""How far apart two float32 computations of one quantity may be: a bound from rounding error analysis.

Two code paths that compute the same expression in float32 (a padded batch and a lone input, a fused kernel
and a reference, one thread and sixteen) differ only in the order of the additions inside each reduction:
the kernel's blocking, its SIMD width, how threads split the work and, for padded batches, the shapes. So
exact equality depends on the machine, and so does a fixed tolerance such as 1e-5 tuned on one machine (it
failed elsewhere on every run). What does not depend on the machine is the rounding error analysis:

* rounding to float32 errs by at most ``u = 2**-24`` relatively (the unit roundoff);
* a sum of ``n`` terms (a dot product, a matrix product's entry, a softmax normaliser) errs, in any order, by
  at most ``gamma_n * sum|t_i|`` with ``gamma_n = n u / (1 - n u)`` (Higham, *Accuracy and Stability of
  Numerical Algorithms*, 2nd ed., 2002, section 3.1). That worst case needs adversarial inputs; with
  rounding errors independent and of mean zero, the error stays below ``gamma~_n(lam) * sum|t_i|`` with
  ``gamma~_n(lam) = exp(lam sqrt(n) u + n u^2 / (1 - u)) - 1 ~ lam sqrt(n) u``, except with probability at
  most ``2 n exp(-lam^2 (1 - u)^2 / 2)`` (Higham & Mary, "A new approach to probabilistic rounding error
  analysis", SIAM J. Sci. Comput. 41(5), 2019). We pick ``lam`` from that probability;
* a value at the end of a chain of reductions of lengths ``n_1 ... n_k`` (a layer's projections, attention,
  feed-forward, LayerNorms, then the next layer) carries, to first order and when no stage amplifies its
  input's relative error, the error of one sum of ``N = n_1 + ... + n_k`` terms whose size is the size of
  the values along the chain: ``scale``, by default the largest magnitude among the compared values;
* two evaluations, each within that bound of the exact value, are within twice the bound of each other.

The bound grows like ``sqrt(N) u scale`` (about 3e-5 * scale for the tiny test models), so a real bug, which
moves a value by a fraction of its own size (a row from another input, attention leaking onto padding, an
offset of 1e-3 relative), still fails: ``tests/test_numerics.py`` shows it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from transformers import PretrainedConfig

UNIT_ROUNDOFF_32 = 2.0**-24  # |fl(x) - x| <= u |x| for round-to-nearest float32
# Chance that one compared value exceeds the probabilistic bound by rounding alone: small enough that no run
# on any machine meets it (a test compares about 1e5 values).
FAILURE_PROBABILITY = 1e-12


def encoder_reduction_length(config: PretrainedConfig, tokens: int) -> int:
    """``N``: the summed lengths of the float32 reductions that one output value of the encoder depends on.

    Per layer: the query and key projections (``hidden`` each), the score ``q . k`` (``head``), the softmax
    normaliser and the weighted sum of values (``tokens`` each), the value projection (``hidden``), the output
    projection (``hidden``), the feed-forward pair (``hidden``, ``intermediate``) and two LayerNorms (mean and
    variance, ``hidden`` each); the embeddings add one LayerNorm. ``tokens`` is the padded length.
    """
    hidden = int(getattr(config, "hidden_size", None) or config.dim)
    intermediate = int(getattr(config, "intermediate_size", None) or config.hidden_dim)
    layers = int(getattr(config, "num_hidden_layers", None) or config.n_layers)
    heads = int(getattr(config, "num_attention_heads", None) or config.n_heads)
    attention = 2 * hidden + hidden // heads + 2 * tokens + 2 * hidden
    per_layer = attention + hidden + intermediate + 2 * 2 * hidden
    return 2 * hidden + layers * per_layer


def float32_difference_bound(scale: ArrayLike, reduction_length: int) -> np.ndarray:
    """Largest ``|a - b|`` between two float32 evaluations of one quantity that differ in summation order.

    ``scale``: the magnitude of the terms summed along the chain (broadcast against the values);
    ``reduction_length``: ``N``, the summed lengths of the reductions along the chain (see module docstring).
    """
    n = max(int(reduction_length), 1)
    u = UNIT_ROUNDOFF_32
    lam = math.sqrt(2.0 * math.log(2.0 * n / FAILURE_PROBABILITY)) / (1.0 - u)
    probable = math.expm1(lam * math.sqrt(n) * u + n * u * u / (1.0 - u))
    worst = n * u / (1.0 - n * u)  # holds always; smaller than the probable bound for n below ~lam^2
    return 2.0 * min(probable, worst) * np.abs(np.asarray(scale, dtype=np.float64))


def assert_float32_close(
    actual: ArrayLike,
    expected: ArrayLike,
    *,
    reduction_length: int,
    scale: ArrayLike | None = None,
    err_msg: str = "",
) -> None:
    """Fail unless ``actual`` and ``expected`` agree within ``float32_difference_bound`` everywhere.

    ``scale`` defaults to the largest magnitude in ``expected``: in a forward pass the rounding errors come
    from activations of the size of the values, not of the size of each (possibly cancelled) value. NaNs must
    sit in the same places; shapes must match exactly.
    """
    where = f"{err_msg}: " if err_msg else ""
    got = np.asarray(actual, dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{where}shape {got.shape} != {want.shape}")
    missing = np.isnan(want)
    if not np.array_equal(np.isnan(got), missing):
        raise AssertionError(f"{where}NaNs in different places")
    if scale is None:
        scale = np.max(np.abs(want), where=~missing, initial=0.0)
    bound = np.broadcast_to(float32_difference_bound(scale, reduction_length), want.shape)
    difference = np.where(missing, 0.0, np.abs(got - want))
    excess = difference > bound
    if excess.any():
        worst = np.unravel_index(np.argmax(np.where(excess, difference / bound, 0.0)), want.shape)
        raise AssertionError(
            f"{where}{int(excess.sum())} of {want.size} values differ by more than float32 rounding "
            f"explains (N = {reduction_length}); worst at {tuple(int(i) for i in worst)}: "
            f"{got[worst]!r} vs {want[worst]!r}, |difference| {difference[worst]:.3g} "
            f"> bound {bound[worst]:.3g}"
        )
