"""Streaming top-k of every neuron at once, with ties broken by sentence then position.

Each candidate (activation, sentence, position) is folded into one int64 *key* whose integer order is the
order we want: activation descending, then sentence ascending, then position ascending. The high 32 bits
are the float32 activation mapped to an order-preserving int32, the low 32 bits count down from the
(sentence, position) code. Keys are unique per neuron, so ``torch.topk`` over keys is exact and
reproducible whatever the batch composition, and shards merge to the same answer as one pass.

Per batch only activations at or above a unit's current k-th value can enter its top-k; after the first
few batches they are a handful per unit, so they are gathered sparsely and only they become keys
(:func:`fold_topk`). A float ``topk`` is used only where its choice cannot hinge on a tie.
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
    Only activations >= a unit's k-th value can enter. Units with at most k such candidates (nearly all,
    once the top-k has seen a few batches) take them sparsely, found by testing the maximum of each group
    of ``CANDIDATE_GROUP`` tokens first; the others (every unit in the first batch) take the batch's best
    k (:func:`_dense_candidates`).
    """
    k, units = keys.shape[1], values.shape[1]
    padded = pad_groups(values) if padded is None else padded
    hit = padded.view(-1, CANDIDATE_GROUP, units).amax(1) >= threshold  # [group, unit]
    heavy = hit.view(torch.uint8).sum(0, dtype=torch.int64) > k  # [unit]: more than k candidates, surely
    hit &= ~heavy
    rows, columns = _group_candidates(hit, values, threshold)
    counts = torch.bincount(columns, minlength=units)  # [unit]
    heavy |= counts > k
    light = ~heavy[columns]
    candidates = _by_unit(rows[light], columns[light], counts.masked_fill(heavy, 0), values, codes, k)
    keys = merge_candidates(keys, candidates)
    heavy_units = heavy.nonzero().squeeze(1)
    if heavy_units.numel() == units:
        keys = merge_candidates(keys, _dense_candidates(padded, values.shape[0], codes, threshold, k).T)
    elif heavy_units.numel():
        columns = padded.index_select(1, heavy_units)
        dense = _dense_candidates(columns, values.shape[0], codes, threshold[heavy_units], k)
        keys[heavy_units] = merge_candidates(keys[heavy_units], dense.T)
    return keys


def _group_candidates(
    hit: torch.Tensor, values: torch.Tensor, threshold: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(token rows, units) of the activations >= threshold inside the ``hit`` [group, unit] groups."""
    tokens, units = values.shape
    flat = hit.view(-1).nonzero().squeeze(1)  # [hit]
    columns = flat % units
    rows = (flat // units)[:, None] * CANDIDATE_GROUP + torch.arange(CANDIDATE_GROUP, device=flat.device)
    inside = rows < tokens  # [hit, group member]
    rows = rows.clamp_(max=tokens - 1)
    keep = (values[rows, columns[:, None]] >= threshold[columns, None]) & inside
    return rows[keep], columns[:, None].expand_as(keep)[keep]


def _by_unit(
    rows: torch.Tensor,
    columns: torch.Tensor,
    counts: torch.Tensor,
    values: torch.Tensor,
    codes: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """Keys [unit, k] of the candidates (rows, columns), each unit's in its own row, EMPTY_KEY-padded."""
    order = torch.argsort(columns, stable=True)
    rows, columns = rows[order], columns[order]
    starts = torch.cumsum(counts, 0) - counts  # [unit] first slot of each unit's candidates
    rank = torch.arange(columns.shape[0], device=columns.device) - starts[columns]
    padded = torch.full((values.shape[1], k), EMPTY_KEY, dtype=torch.int64, device=values.device)
    padded[columns, rank] = encode_keys(values[rows, columns], codes[rows])
    return padded


def _dense_candidates(
    padded: torch.Tensor, tokens: int, codes: torch.Tensor, threshold: torch.Tensor, k: int
) -> torch.Tensor:
    """Keys [k, unit] of each unit's best k tokens of a batch, for units with more than k candidates.

    ``padded`` [group * CANDIDATE_GROUP, unit] holds ``tokens`` (> k) activations, then -inf. The best k
    tokens lie in the k groups with the largest maxima, so a float ``topk`` ranks only those groups'
    tokens. Wherever a choice could hinge on a float tie (equal k-th and (k+1)-th group maxima or values,
    at or above the threshold), the unit is ranked by keys over all its tokens instead.
    """
    units = padded.shape[1]
    members = torch.arange(CANDIDATE_GROUP, device=padded.device)[None, :, None]
    group_max = padded.view(-1, CANDIDATE_GROUP, units).amax(1)  # [group, unit]
    if group_max.shape[0] > k:
        best, groups = torch.topk(group_max, k + 1, dim=0)  # [k + 1, unit]
        tied = (best[k - 1] == best[k]) & (best[k - 1] >= threshold)
        rows = (groups[:k, None, :] * CANDIDATE_GROUP + members).reshape(-1, units)  # [k * group, unit]
    else:
        tied = torch.zeros(units, dtype=torch.bool, device=padded.device)
        rows = torch.arange(padded.shape[0], device=padded.device)[:, None].expand(-1, units)
    top_values, top = torch.topk(padded.gather(0, rows), k + 1, dim=0)  # [k + 1, unit]
    top_rows = rows.gather(0, top[:k]).clamp_(max=tokens - 1)  # padding never ranks in the best k
    keys = encode_keys(top_values[:k], codes[top_rows])
    tied |= (top_values[k - 1] == top_values[k]) & (top_values[k - 1] >= threshold)
    tied_units = tied.nonzero().squeeze(1)
    if tied_units.numel():
        keys[:, tied_units] = exact_candidates(padded[:tokens].index_select(1, tied_units), codes, k)
    return keys


def exact_candidates(values: torch.Tensor, codes: torch.Tensor, k: int) -> torch.Tensor:
    """Keys [min(k, token), unit] of each unit's best ``k`` tokens, ranked by keys over all tokens."""
    keys = encode_keys(values, codes[:, None])  # [token, unit]
    return torch.topk(keys, min(k, values.shape[0]), dim=0).values


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
