"""The state of a neuron activation index, its streaming statistics and the associative merge of two states.

For every FFN neuron (layer, unit) over a corpus, following the exemplar-based views of Bolukbasi et al.
("An Interpretability Illusion for BERT", 2021, https://arxiv.org/abs/2104.07143) and the activation index
that Mondal et al. ("Towards Generating Informative Textual Description for Neurons in Language Models",
arXiv 2401.16731, 2024) describe neurons from:

- the top-k exemplars: activation, sentence id and token position, best first;
- streaming statistics: token count, sum, sum of squares, min, max (so mean and std);
- a histogram with *fixed* bin edges, so that states of corpus shards add up.

Histogram: ``HISTOGRAM_BINS`` = 68 bins of width 1/8 over [-0.5, 8.0), plus an underflow (< -0.5) and an
overflow (>= 8.0) slot: ``histogram[..., 0]`` underflow, ``[..., 1:-1]`` the bins, ``[..., -1]`` overflow.
GELU outputs are >= -0.17, and FFN activations of BERT-family encoders mostly lie in [-0.17, 4], so the bins
cover the bulk with a binary-exact width (bin boundaries are exact in float32) and the overflow slot
counts the rare large outliers. Special tokens ([CLS], [SEP], padding) are never counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.errors import InvalidInput
from app.methods.neurons.topk import merge_topk_arrays

HISTOGRAM_LOW = -0.5
HISTOGRAM_WIDTH = 0.125
HISTOGRAM_BINS = 68
HISTOGRAM_HIGH = HISTOGRAM_LOW + HISTOGRAM_BINS * HISTOGRAM_WIDTH  # 8.0
HISTOGRAM_SLOTS = HISTOGRAM_BINS + 2  # underflow, bins, overflow
DEFAULT_K = 50
# Each batch's sums are rounded to a multiple of these quanta before they join the running sums. Sums of
# multiples of 2**-q are exact in float64 while they stay below 2**(53 - q), so the running sums do not
# depend on the order batches are added in: shard states built apart (on Ray workers) and combined equal a
# single pass byte for byte. Below 2**29 (5e8) for sums, 2**33 (8.6e9) for sums of squares; the rounding
# costs at most half a quantum per batch (3e-8, 5e-7).
SUM_QUANTUM = 2.0**-24
SQUARES_QUANTUM = 2.0**-20
_UNDERFLOW_VALUE = HISTOGRAM_LOW - HISTOGRAM_WIDTH  # clamped there, a value lands in slot 0
_SLOT_OFFSET = 1 - HISTOGRAM_LOW / HISTOGRAM_WIDTH  # the slot of floor(x / width) == 0, i.e. of [0, width)

_ARRAYS = (
    "top_values",
    "top_sentences",
    "top_positions",
    "total",
    "total_squares",
    "minimum",
    "maximum",
    "histogram",
)
_SCALARS = ("k", "num_sentences", "sentences_done", "tokens")


def histogram_edges() -> np.ndarray:
    """The ``HISTOGRAM_BINS + 1`` inner bin edges (float64), from -0.5 to 8.0."""
    return HISTOGRAM_LOW + HISTOGRAM_WIDTH * np.arange(HISTOGRAM_BINS + 1, dtype=np.float64)


def quantise(sums: torch.Tensor, quantum: float) -> torch.Tensor:
    """``sums`` (float64) rounded to the nearest multiple of ``quantum`` (a power of two: exact steps)."""
    return torch.floor(sums / quantum + 0.5) * quantum


def fold_statistics(
    values: torch.Tensor,
    total: torch.Tensor,
    total_squares: torch.Tensor,
    minimum: torch.Tensor,
    maximum: torch.Tensor,
    histogram: torch.Tensor,
    scratch: torch.Tensor,
    slots: torch.Tensor,
    group_max: torch.Tensor | None = None,
) -> None:
    """Add one batch of one layer, ``values`` [token, unit], to its running statistics, in place.

    ``total``, ``total_squares`` [unit] float64, ``minimum``, ``maximum`` [unit] float32, ``histogram``
    [slot, unit] int64 (slot-major: one ``bincount`` over slot * units + unit counts every neuron at
    once); ``scratch`` float32 and ``slots`` int64 (bincount's own type: no conversion per call) are
    reusable [token, unit] buffers. ``group_max`` [group, unit], maxima over groups of tokens that the top-k
    computes anyway, saves a pass for the maximum.
    """
    units = values.shape[1]
    total += quantise(values.sum(0).double(), SUM_QUANTUM)
    total_squares += quantise(torch.mul(values, values, out=scratch).sum(0).double(), SQUARES_QUANTUM)
    torch.minimum(minimum, values.amin(0), out=minimum)
    torch.maximum(maximum, (values if group_max is None else group_max).amax(0), out=maximum)
    # floor(x / width) is exact in float32 (the width is a power of two), and so is slot * units + unit
    # while it stays below 2**24, i.e. for up to 239,000 units per layer
    unit_offsets = torch.arange(units, dtype=torch.float32, device=values.device) + _SLOT_OFFSET * units
    torch.clamp(values, _UNDERFLOW_VALUE, HISTOGRAM_HIGH, out=scratch)
    scratch.mul_(1.0 / HISTOGRAM_WIDTH).floor_()
    torch.add(unit_offsets, scratch, alpha=units, out=scratch)
    slots.copy_(scratch)  # [token, unit]: slot * units + unit
    histogram.view(-1).add_(torch.bincount(slots.view(-1), minlength=HISTOGRAM_SLOTS * units))


@dataclass
class IndexState:
    """Everything an index knows, as numpy arrays; complete when ``sentences_done == num_sentences``.

    Sentence ids index the corpus the state was built on; ``sentences_done`` counts the sentences folded
    in so far, in the build's (length-sorted) batch order, which is what a resumed build skips.
    """

    k: int
    num_sentences: int
    sentences_done: int
    tokens: int  # non-special tokens seen: the count behind every neuron's statistics
    top_values: np.ndarray  # [layer, unit, k] float32, best first; -inf where empty
    top_sentences: np.ndarray  # [layer, unit, k] int32; -1 where empty
    top_positions: np.ndarray  # [layer, unit, k] int32 token position (0 is [CLS]); -1 where empty
    total: np.ndarray  # [layer, unit] float64 sum of activations
    total_squares: np.ndarray  # [layer, unit] float64 sum of squared activations
    minimum: np.ndarray  # [layer, unit] float32; +inf before any token
    maximum: np.ndarray  # [layer, unit] float32; -inf before any token
    histogram: np.ndarray  # [layer, unit, HISTOGRAM_SLOTS] int64

    @classmethod
    def empty(cls, num_layers: int, num_units: int, k: int, num_sentences: int) -> IndexState:
        """The state before any sentence has been seen."""
        shape = (num_layers, num_units)
        return cls(
            k=k,
            num_sentences=num_sentences,
            sentences_done=0,
            tokens=0,
            top_values=np.full((*shape, k), -np.inf, dtype=np.float32),
            top_sentences=np.full((*shape, k), -1, dtype=np.int32),
            top_positions=np.full((*shape, k), -1, dtype=np.int32),
            total=np.zeros(shape, dtype=np.float64),
            total_squares=np.zeros(shape, dtype=np.float64),
            minimum=np.full(shape, np.inf, dtype=np.float32),
            maximum=np.full(shape, -np.inf, dtype=np.float32),
            histogram=np.zeros((*shape, HISTOGRAM_SLOTS), dtype=np.int64),
        )

    @property
    def num_layers(self) -> int:
        return int(self.total.shape[0])

    @property
    def num_units(self) -> int:
        return int(self.total.shape[1])

    @property
    def complete(self) -> bool:
        return self.sentences_done == self.num_sentences

    @property
    def mean(self) -> np.ndarray:
        """[layer, unit] float64 mean activation over non-special tokens (NaN before any token)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.tokens

    @property
    def std(self) -> np.ndarray:
        """[layer, unit] float64 population standard deviation over non-special tokens."""
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = self.total_squares / self.tokens - self.mean**2
        return np.sqrt(np.maximum(variance, 0.0))

    def to_arrays(self) -> dict[str, Any]:
        """A dict for :func:`app.store.codec.pack` (arrays plus plain scalars)."""
        return {
            **{name: getattr(self, name) for name in _ARRAYS},
            **{s: int(getattr(self, s)) for s in _SCALARS},
        }

    def digest(self) -> str:
        """SHA-256 of every scalar and array (dtype, shape, bytes): equal digests, byte-equal states."""
        digest = hashlib.sha256()
        for name in _SCALARS:
            digest.update(f"{name}={int(getattr(self, name))};".encode())
        for name in _ARRAYS:
            array = np.ascontiguousarray(getattr(self, name))
            digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    @classmethod
    def from_arrays(cls, data: dict[str, Any]) -> IndexState:
        return cls(**{name: int(data[name]) for name in _SCALARS}, **{name: data[name] for name in _ARRAYS})

    def layer_arrays(self, layer: int) -> dict[str, np.ndarray]:
        """The arrays of one layer (each without its layer axis), as the store keeps them."""
        return {name: getattr(self, name)[layer] for name in _ARRAYS}

    @classmethod
    def from_layers(cls, scalars: dict[str, int], layers: list[dict[str, np.ndarray]]) -> IndexState:
        """Inverse of :meth:`layer_arrays` over all layers, with the scalars of :meth:`to_arrays`."""
        arrays = {name: np.stack([layer[name] for layer in layers]) for name in _ARRAYS}
        return cls(**{name: int(scalars[name]) for name in _SCALARS}, **arrays)


def merge(a: IndexState, b: IndexState) -> IndexState:
    """The state of corpus ``a`` followed by corpus ``b`` (b's sentence ids shift by a's sentence count).

    Associative, and equal to a build over the concatenated corpus: exemplars exactly (the same total
    order breaks ties), counts, min, max, histograms and (quantised) sums exactly.
    """
    if not (a.complete and b.complete):
        raise InvalidInput("Only finished index states can be merged; finish or resume the builds first.")
    total_sentences = a.num_sentences + b.num_sentences
    return _union(a, b, a.num_sentences, total_sentences, total_sentences)


def combine(a: IndexState, b: IndexState) -> IndexState:
    """Two states of the *same* corpus over disjoint sets of its sentences (shards of one batch plan, ids
    global) as one: what a single pass over both shards' batches gives, byte for byte."""
    if a.num_sentences != b.num_sentences:
        raise InvalidInput(
            f"Index states of different corpora ({a.num_sentences} vs {b.num_sentences} sentences) cannot "
            "be combined; merge them instead."
        )
    done = a.sentences_done + b.sentences_done
    if done > a.num_sentences:
        raise InvalidInput(f"The shards cover {done} of {a.num_sentences} sentences: they overlap.")
    return _union(a, b, 0, a.num_sentences, done)


def _union(a: IndexState, b: IndexState, shift: int, num_sentences: int, sentences_done: int) -> IndexState:
    if a.k != b.k or a.total.shape != b.total.shape:
        raise InvalidInput(
            f"Index states do not match: k {a.k} vs {b.k}, neurons {a.total.shape} vs {b.total.shape}."
        )
    shifted = np.where(b.top_sentences >= 0, b.top_sentences + shift, -1).astype(np.int32)
    values, sentences, positions = merge_topk_arrays(
        np.concatenate([a.top_values, b.top_values], axis=-1),
        np.concatenate([a.top_sentences, shifted], axis=-1),
        np.concatenate([a.top_positions, b.top_positions], axis=-1),
        a.k,
    )
    return IndexState(
        k=a.k,
        num_sentences=num_sentences,
        sentences_done=sentences_done,
        tokens=a.tokens + b.tokens,
        top_values=values,
        top_sentences=sentences,
        top_positions=positions,
        total=a.total + b.total,
        total_squares=a.total_squares + b.total_squares,
        minimum=np.minimum(a.minimum, b.minimum),
        maximum=np.maximum(a.maximum, b.maximum),
        histogram=a.histogram + b.histogram,
    )
