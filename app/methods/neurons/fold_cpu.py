"""One compiled pass per layer and batch that folds FFN activations into an index state, on the CPU.

The torch path (:func:`app.methods.neurons.stats.fold_statistics` and
:class:`app.methods.neurons.topk.RunningTopK`) makes about ten passes over a layer's [token, unit]
activations, one of them a single-threaded ``bincount``; on a CPU that costs a quarter of the forward pass.
Here one numba kernel per layer and batch splits the units between the threads; each thread walks the
tokens in chunks that stay in its L2 cache, with three short loops per chunk that the compiler handles well
(the statistics vectorise; the histogram and the top-k test are a few instructions per activation). It
updates in place:

- the sums (float64, per token: no float32 partial sums; each batch's quantised as on the torch path),
  minimum, maximum and the fixed-edge histogram of :mod:`app.methods.neurons.stats` (slot-major);
- the top-k of :mod:`app.methods.neurons.topk` as one binary min-heap of int64 keys per unit, whose root
  is the admission bound: an activation below the root's value cannot enter, so almost every token costs
  one comparison. Keys are the same (activation, then sentence, then position), so the result is exactly
  that of the torch path whatever the batch composition.

Used for float32 activations on the CPU; other devices and dtypes take the torch path. The first call in a
process compiles the kernel (a few seconds), cached on disk by numba afterwards.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import torch

from app.methods.neurons.stats import HISTOGRAM_LOW, HISTOGRAM_WIDTH, SQUARES_QUANTUM, SUM_QUANTUM

_INVERSE_WIDTH = 1.0 / HISTOGRAM_WIDTH
_ONE_AT_A_TIME = threading.Lock()  # numba's thread pool serves one parallel region at a time
_TOKEN_CHUNK = 32  # tokens folded per pass: a part's slice of them stays in the L2 cache
_LOW_SLOT = HISTOGRAM_LOW * _INVERSE_WIDTH  # floor(x / width) of the first bin's lower edge (slot 1): -4


@numba.njit(cache=True, nogil=True)
def _sift_down(heap: np.ndarray, unit: int, key: np.int64, slot: int = 0) -> None:
    """Put ``key`` at ``slot`` of ``heap[unit]`` (a min-heap below it) and sift it down to its place."""
    size = heap.shape[1]
    while True:
        child = 2 * slot + 1
        if child >= size:
            break
        if child + 1 < size and heap[unit, child + 1] < heap[unit, child]:
            child += 1
        if heap[unit, child] >= key:
            break
        heap[unit, slot] = heap[unit, child]
        slot = child
    heap[unit, slot] = key


@numba.njit(cache=True, nogil=True)
def heapify(heap: np.ndarray) -> None:
    """Make every row of ``heap`` [unit, k] a min-heap, in place."""
    units, size = heap.shape
    for unit in range(units):
        for start in range(size // 2 - 1, -1, -1):
            _sift_down(heap, unit, heap[unit, start], start)


@numba.njit(cache=True, nogil=True)
def _fold_units(
    activations: np.ndarray,
    bits: np.ndarray,
    rows: np.ndarray,
    codes: np.ndarray,
    total: np.ndarray,
    total_squares: np.ndarray,
    minimum: np.ndarray,
    maximum: np.ndarray,
    histogram: np.ndarray,
    heap: np.ndarray,
    bound: np.ndarray,
    first: int,
    end: int,
) -> None:
    """:func:`_fold` for the units ``first:end``: three loops over the tokens, each one simple enough for the
    compiler (the statistics vectorise; the histogram and the top-k test are a load and a compare)."""
    tokens = rows.shape[0]
    lows, highs, bounds = minimum[first:end], maximum[first:end], bound[first:end]
    slots, width = histogram.shape[0], end - first
    sums = np.zeros(width, dtype=np.float64)  # this batch's sums, quantised into the running ones below
    squares = np.zeros(width, dtype=np.float64)
    counts = np.zeros(slots * width, dtype=np.int32)  # this call's [slot, unit] counts, flat
    cells = np.empty(width, dtype=np.int32)
    for start in range(0, tokens, _TOKEN_CHUNK):
        _fold_chunk(
            activations,
            bits,
            rows,
            codes,
            sums,
            squares,
            lows,
            highs,
            counts,
            cells,
            heap[first:end],
            bounds,
            start,
            min(start + _TOKEN_CHUNK, tokens),
            first,
            end,
        )
    for unit in range(width):  # as stats.quantise: exact steps, so running sums do not depend on order
        total[first + unit] += np.floor(sums[unit] / SUM_QUANTUM + 0.5) * SUM_QUANTUM
        total_squares[first + unit] += np.floor(squares[unit] / SQUARES_QUANTUM + 0.5) * SQUARES_QUANTUM
    part = histogram[:, first:end]
    for slot in range(slots):
        for unit in range(width):
            part[slot, unit] += counts[slot * width + unit]


@numba.njit(cache=True, nogil=True)
def _fold_chunk(
    activations: np.ndarray,
    bits: np.ndarray,
    rows: np.ndarray,
    codes: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    counts: np.ndarray,
    cells: np.ndarray,
    heap: np.ndarray,
    bounds: np.ndarray,
    start: int,
    stop: int,
    first: int,
    end: int,
) -> None:
    """The tokens ``start:stop`` of :func:`_fold_units` (``counts`` its flat [slot, unit] int32 counts)."""
    width = end - first
    last_slot = np.float32(counts.shape[0] // width - 1)
    low_slot = np.float32(_LOW_SLOT - 1.0)
    inverse_width = np.float32(_INVERSE_WIDTH)
    for token in range(start, stop):
        values = activations[rows[token], first:end]
        for unit in range(end - first):
            value = values[unit]
            wide = np.float64(value)
            sums[unit] += wide
            squares[unit] += wide * wide
            lows[unit] = value if value < lows[unit] else lows[unit]
            highs[unit] = value if value > highs[unit] else highs[unit]
    for token in range(start, stop):
        values = activations[rows[token], first:end]
        for unit in range(width):  # vectorised: the flat [slot, unit] cell of each unit's value
            # floor first: the slot arithmetic that follows is on integers, exact in float32
            slot = np.floor(values[unit] * inverse_width) - low_slot
            slot = slot if slot > 0 else np.float32(0.0)  # underflow; NaN too, never an index out of range
            slot = slot if slot < last_slot else last_slot
            cells[unit] = np.int32(slot) * width + unit
        for unit in range(width):
            counts[cells[unit]] += 1
    for token in range(start, stop):
        row_bits = bits[rows[token], first:end]
        for unit in range(end - first):
            raw = row_bits[unit]
            # negative floats in reverse magnitude order (branch-free); -0.0 comes out as -1, just below +0.0
            ordered = np.int64(raw ^ ((raw >> 31) & 0x7FFFFFFF))
            if ordered >= bounds[unit] - 1:
                if ordered == -1:
                    ordered = 0  # -0.0 ranks as +0.0
                key = (ordered << 32) | codes[token]
                if key > heap[unit, 0]:
                    _sift_down(heap, unit, key)
                    bounds[unit] = heap[unit, 0] >> 32


@numba.njit(cache=True, nogil=True, parallel=True)
def _fold(
    activations: np.ndarray,  # [row, unit] float32, every row of the batch (specials and padding included)
    bits: np.ndarray,  # the same memory as int32
    rows: np.ndarray,  # [token] int64 the rows to count
    codes: np.ndarray,  # [token] int64 tie-break codes
    total: np.ndarray,  # [unit] float64
    total_squares: np.ndarray,  # [unit] float64
    minimum: np.ndarray,  # [unit] float32
    maximum: np.ndarray,  # [unit] float32
    histogram: np.ndarray,  # [slot, unit] int64
    heap: np.ndarray,  # [unit, k] int64 min-heaps of keys
    bound: np.ndarray,  # [unit] int64 the high half of each heap's root: the least admissible ordered value
    parts: int,
) -> None:
    units = activations.shape[1]
    width = (units + parts - 1) // parts
    for part in numba.prange(parts):
        first = part * width
        end = min(first + width, units)
        if first < end:
            _fold_units(
                activations,
                bits,
                rows,
                codes,
                total,
                total_squares,
                minimum,
                maximum,
                histogram,
                heap,
                bound,
                first,
                end,
            )


def compiled_fold_available(device: torch.device) -> bool:
    """Whether builds on ``device`` use this module (the CPU) rather than the torch path (GPUs)."""
    return device.type == "cpu"


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel on a tiny input, e.g. before taking the model lock."""
    heap = torch.full((1, 1), torch.iinfo(torch.int64).min, dtype=torch.int64)
    fold_layer(
        torch.zeros((1, 1)),
        torch.zeros(1, dtype=torch.int64),
        torch.zeros(1, dtype=torch.int64),
        torch.zeros(1, dtype=torch.float64),
        torch.zeros(1, dtype=torch.float64),
        torch.zeros(1),
        torch.zeros(1),
        torch.zeros((2, 1), dtype=torch.int64),
        heap,
        heap[:, 0] >> 32,
    )


def fold_layer(
    activations: torch.Tensor,
    rows: torch.Tensor,
    codes: torch.Tensor,
    total: torch.Tensor,
    total_squares: torch.Tensor,
    minimum: torch.Tensor,
    maximum: torch.Tensor,
    histogram: torch.Tensor,
    heap: torch.Tensor,
    bound: torch.Tensor,
) -> None:
    """Fold one layer's batch ``activations`` [row, unit] (CPU float32, contiguous) into its state in place.

    ``rows`` [token] are the rows that count (no special tokens), ``codes`` their tie-break codes
    (:func:`app.methods.neurons.topk.tiebreak_codes`); the state tensors are as :func:`fold_statistics`
    takes them, with the top-k as ``heap`` [unit, k] (rows made min-heaps by :func:`heapify`) and ``bound``
    [unit] the high half of each root key (``heap[:, 0] >> 32``).
    """
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    values = activations.numpy()
    with _ONE_AT_A_TIME:
        numba.set_num_threads(threads)
        _fold(
            values,
            values.view(np.int32),
            rows.numpy(),
            codes.numpy(),
            total.numpy(),
            total_squares.numpy(),
            minimum.numpy(),
            maximum.numpy(),
            histogram.numpy(),
            heap.numpy(),
            bound.numpy(),
            threads,
        )
