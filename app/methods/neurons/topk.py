"""Streaming top-k of every neuron at once, with ties broken by sentence then position.

Each candidate (activation, sentence, position) is folded into one int64 *key* whose integer order is the
order we want: activation descending, then sentence ascending, then position ascending. The high 32 bits
are the float32 activation mapped to an order-preserving int32, the low 32 bits count down from the
(sentence, position) code. Keys are unique per neuron, so ``torch.topk`` over keys is exact and
reproducible whatever the batch composition, and shards merge to the same answer as one pass.

Per batch only activations at or above a unit's admission bound (its current k-th value, raised to its
k-th largest group maximum where many groups reach it) can enter its top-k; they are found sparsely by
testing the maximum of each group of ``CANDIDATE_GROUP`` tokens first, and only they become keys
(:func:`fold_topk`). A build keeps a :class:`RunningTopK` per layer, which buffers each unit's candidates
over several batches and merges them in bulk, since a merge costs a ranking of the whole row. Every
ranking is over keys, so no choice hinges on a float tie.
"""

from __future__ import annotations

import numpy as np
import torch

POSITION_BITS = 10
MAX_POSITIONS = 1 << POSITION_BITS  # tokens per sentence the key can tell apart
SENTENCE_BITS = 32 - POSITION_BITS
MAX_SENTENCES = 1 << SENTENCE_BITS  # 4,194,304 sentences per build (merge shards beyond that)
EMPTY_KEY = torch.iinfo(torch.int64).min  # an unfilled slot: below every real key
CANDIDATE_GROUP = 8  # tokens whose maximum is tested first: an 8th of the comparisons and of the scan
_LOW_MAX = (1 << 32) - 1
_LOW_MASK = 0xFFFFFFFF
_MAGNITUDE_MASK = 0x7FFFFFFF
_SIGN_SHIFT = 31
_HALF_SHIFT = 32


def tiebreak_codes(sentences: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Low key halves (int64): larger for a lower sentence id, then for a lower position."""
    return _LOW_MAX - ((sentences.to(torch.int64) << POSITION_BITS) | positions.to(torch.int64))


def encode_keys(values: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """int64 keys of float32 ``values`` with their ``codes`` (same shape, or broadcastable)."""
    values = values.to(torch.float32) + 0.0  # -0.0 + 0.0 == +0.0: one zero, so 0 ties with 0
    bits = values.view(torch.int32)
    ordered = bits ^ ((bits >> _SIGN_SHIFT) & _MAGNITUDE_MASK)  # negative floats: reverse magnitude order
    return (ordered.to(torch.int64) << _HALF_SHIFT) | codes


def decode_values(keys: torch.Tensor) -> torch.Tensor:
    """float32 activations of ``keys``; -inf where a slot is empty."""
    high = (keys >> _HALF_SHIFT).to(torch.int32)
    values = (high ^ ((high >> _SIGN_SHIFT) & _MAGNITUDE_MASK)).view(torch.float32)
    return values.masked_fill(keys == EMPTY_KEY, float("-inf"))


def decode_keys(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(values float32, sentences int32, positions int32) of ``keys``; -inf, -1, -1 where empty."""
    empty = keys == EMPTY_KEY
    code = _LOW_MAX - (keys & _LOW_MASK)
    sentences = (code >> POSITION_BITS).to(torch.int32).masked_fill(empty, -1)
    positions = (code & (MAX_POSITIONS - 1)).to(torch.int32).masked_fill(empty, -1)
    return decode_values(keys), sentences, positions


def kth_values(keys: torch.Tensor) -> torch.Tensor:
    """The admission threshold of each neuron: the k-th (least) value of its keys; -inf while not full."""
    return decode_values(keys.amin(-1))


def sort_keys(keys: torch.Tensor) -> torch.Tensor:
    """``keys`` best first along the last axis (the running top-k keeps each row unordered)."""
    return torch.sort(keys, dim=-1, descending=True).values


def pad_groups(values: torch.Tensor) -> torch.Tensor:
    """``values`` [token, unit] with -inf rows appended up to a multiple of ``CANDIDATE_GROUP`` tokens."""
    tokens, units = values.shape
    padded = values.new_full((-(-tokens // CANDIDATE_GROUP) * CANDIDATE_GROUP, units), float("-inf"))
    padded[:tokens] = values
    return padded


def fold_topk(
    keys: torch.Tensor,
    threshold: torch.Tensor,
    values: torch.Tensor,
    codes: torch.Tensor,
    padded: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fold one batch of one layer into its running top-k and return the new keys [unit, k].

    ``keys`` [unit, k] in any order, ``threshold`` [unit] their k-th values (:func:`kth_values`),
    ``values`` [token, unit] the batch activations, ``codes`` [token] from :func:`tiebreak_codes`,
    ``padded`` optionally :func:`pad_groups` of ``values`` (a caller with a reusable buffer saves a copy).
    Only activations at or above a unit's admission bound (:func:`admission_bounds`) can enter; they are
    found sparsely, group by group, and only they become keys.
    """
    k, units = keys.shape[1], values.shape[1]
    padded = pad_groups(values) if padded is None else padded
    group_max = padded.view(-1, CANDIDATE_GROUP, units).amax(1)  # [group, unit]
    bounds, hit = admission_bounds(group_max, threshold, k)
    unit_ids, candidate_keys = _candidates(padded, values.shape[0], hit, bounds, codes)
    return merge_by_unit(keys, unit_ids, candidate_keys)


def admission_bounds(
    group_max: torch.Tensor, threshold: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per unit the least activation that can enter its top-k, and which groups reach it [unit, group].

    The bound is the running k-th value, raised for a unit where more than k groups reach it (every unit
    in the first batch) to its k-th largest group maximum: k distinct tokens reach that, so the batch's
    best k all lie at or above it, and at most a few times k tokens do.
    """
    groups, units = group_max.shape
    hit = torch.empty((units, groups), dtype=torch.bool, device=group_max.device)
    torch.ge(group_max.T, threshold[:, None], out=hit)  # [unit, group]: unit-major, for _candidates
    crowded = (hit.sum(1) > k).nonzero().squeeze(1)
    if crowded.numel() == 0:
        return threshold, hit
    column_max = group_max.index_select(1, crowded)  # [group, crowded]
    kth_group_max = torch.topk(column_max, k, dim=0, sorted=False).values.amin(0)
    bounds = threshold.clone()
    bounds[crowded] = torch.maximum(threshold[crowded], kth_group_max)
    hit[crowded] = column_max.T >= bounds[crowded, None]
    return bounds, hit


def _candidates(
    padded: torch.Tensor, tokens: int, hit: torch.Tensor, bounds: torch.Tensor, codes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(units [candidate], keys [candidate]) of the activations >= bound inside the ``hit`` groups.

    Candidates come ordered by unit (``hit`` is unit-major).
    """
    units, groups = hit.shape
    flat = hit.view(-1).nonzero().squeeze(1)  # [hit group] unit * groups + group
    unit_ids = torch.div(flat, groups, rounding_mode="floor")
    start = (flat - unit_ids * groups) * (CANDIDATE_GROUP * units) + unit_ids  # first member's flat index
    members = torch.arange(CANDIDATE_GROUP, device=flat.device) * units
    index = start[:, None] + members  # [hit group, member] flat index into padded
    found = padded.view(-1).take(index)
    keep = (found >= bounds[unit_ids, None]) & (index < tokens * units)  # padding rows never count
    chosen = keep.view(-1).nonzero().squeeze(1)
    index = index.view(-1)[chosen]
    keys = encode_keys(found.view(-1)[chosen], codes[torch.div(index, units, rounding_mode="floor")])
    return unit_ids[torch.div(chosen, CANDIDATE_GROUP, rounding_mode="floor")], keys


def merge_by_unit(keys: torch.Tensor, unit_ids: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Fold candidate keys [candidate] of units ``unit_ids`` (sorted) into running top-k keys [unit, k].

    Only the units with candidates are merged, laid out one unit per row, as wide as the busiest unit but
    at most 2k (reading the width waits for the device once); a unit with more (many tokens tied) first
    ranks its own.
    """
    units, k = keys.shape
    if unit_ids.numel() == 0:
        return keys
    counts = torch.bincount(unit_ids, minlength=units)  # [unit]
    touched = counts > 0
    rows = touched.nonzero().squeeze(1)  # [row] the units with candidates
    row_of = torch.cumsum(touched, 0) - 1  # [unit] its row
    starts = torch.cumsum(counts, 0) - counts  # [unit] first candidate of each unit
    rank = torch.arange(unit_ids.shape[0], device=unit_ids.device) - starts[unit_ids]
    width, cap = int(counts.max()), 2 * k
    laid = torch.full((rows.shape[0], min(width, cap)), EMPTY_KEY, dtype=torch.int64, device=keys.device)
    if width > cap:
        wide = counts > cap
        wide_units = wide.nonzero().squeeze(1)
        in_wide = wide[unit_ids]
        block = torch.full((wide_units.shape[0], width), EMPTY_KEY, dtype=torch.int64, device=keys.device)
        slot = torch.cumsum(wide, 0) - 1  # [unit] row of a wide unit in ``block``
        block[slot[unit_ids[in_wide]], rank[in_wide]] = candidates[in_wide]
        laid[row_of[wide_units], :k] = torch.topk(block, k, dim=1, sorted=False).values
        narrow = ~in_wide
        unit_ids, rank, candidates = unit_ids[narrow], rank[narrow], candidates[narrow]
    laid[row_of[unit_ids], rank] = candidates
    if rows.shape[0] == units:
        return merge_candidates(keys, laid)
    keys = keys.clone()
    keys[rows] = merge_candidates(keys[rows], laid)
    return keys


class RunningTopK:
    """The running top-k keys [unit, k] of one layer; candidates wait per unit and merge in bulk.

    A merge ranks a whole row however few candidates arrived, so each unit gathers up to k candidates over
    several batches and merges when the next batch would overflow its buffer (units with more than k
    candidates in one batch merge at once). Its admission threshold moves at its merges only: admitting a
    few more candidates than necessary changes nothing, so the result is exact (:meth:`flush` before
    reading ``keys``).
    """

    def __init__(self, keys: torch.Tensor) -> None:
        self.keys = keys  # [unit, k]
        self.threshold = kth_values(keys)  # [unit]
        self.pending = torch.full_like(keys, EMPTY_KEY)  # [unit, k] candidates not merged yet
        self.filled = torch.zeros(keys.shape[0], dtype=torch.int64, device=keys.device)  # [unit]

    def fold(
        self, values: torch.Tensor, codes: torch.Tensor, padded: torch.Tensor, group_max: torch.Tensor
    ) -> None:
        """Add one batch: ``values`` [token, unit], ``padded`` and ``group_max`` as in :func:`fold_topk`."""
        units, k = self.keys.shape
        bounds, hit = admission_bounds(group_max, self.threshold, k)
        unit_ids, candidates = _candidates(padded, values.shape[0], hit, bounds, codes)
        if unit_ids.numel() == 0:
            return
        counts = torch.bincount(unit_ids, minlength=units)  # [unit]
        crowded = counts > k
        overflow = (self.filled + counts > k) & ~crowded
        if bool(overflow.any()):
            self._merge(overflow.nonzero().squeeze(1))
        if bool(crowded.any()):
            rows = crowded.nonzero().squeeze(1)
            direct = crowded[unit_ids]
            row_of = torch.cumsum(crowded, 0) - 1  # [unit] its row among the crowded
            merged = merge_by_unit(self.keys[rows], row_of[unit_ids[direct]], candidates[direct])
            self.keys[rows] = merged
            self.threshold[rows] = kth_values(merged)
            unit_ids, candidates = unit_ids[~direct], candidates[~direct]
            counts = counts.masked_fill(crowded, 0)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(unit_ids.shape[0], device=unit_ids.device) - starts[unit_ids]
        self.pending[unit_ids, self.filled[unit_ids] + rank] = candidates
        self.filled += counts

    def flush(self) -> torch.Tensor:
        """Merge every waiting candidate; returns ``keys``."""
        self._merge((self.filled > 0).nonzero().squeeze(1))
        return self.keys

    def _merge(self, rows: torch.Tensor) -> None:
        if rows.numel() == 0:
            return
        self.keys[rows] = merged = merge_candidates(self.keys[rows], self.pending[rows])
        self.threshold[rows] = kth_values(merged)
        self.pending[rows] = EMPTY_KEY
        self.filled[rows] = 0


def merge_candidates(keys: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Fold candidate keys [unit, c] into running top-k keys [unit, k] (rows unordered: see sort_keys)."""
    return torch.topk(torch.cat([keys, candidates], dim=1), keys.shape[1], dim=1, sorted=False).values


def merge_topk_arrays(
    values: np.ndarray, sentences: np.ndarray, positions: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best ``k`` along the last axis in key order (value desc, sentence asc, position asc).

    The numpy twin of the key order, for merging saved states: no limit on sentence ids. Empty slots
    (sentence -1) sort last.
    """
    values = values.astype(np.float32) + np.float32(0.0)
    sentence_order = np.where(sentences < 0, np.iinfo(np.int64).max, sentences.astype(np.int64))
    order = np.lexsort((positions, sentence_order, -values), axis=-1)[..., :k]
    return (
        np.take_along_axis(values, order, axis=-1),
        np.take_along_axis(sentences, order, axis=-1),
        np.take_along_axis(positions, order, axis=-1),
    )
