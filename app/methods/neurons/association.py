"""Unsupervised neuron <-> descriptor association by enrichment among a neuron's exemplar sentences.

Mondal et al., "Towards Generating Informative Textual Description for Neurons in Language Models"
(arXiv 2401.16731, 2024, https://arxiv.org/abs/2401.16731) tie neurons to candidate descriptors without
supervision (75% precision@2, 50% recall@2 on BERT-base) and check the ties for stability across data.

For neuron i with n_i distinct exemplar sentences (its top-k activating sentences, inside the universe of
N sentences) and descriptor d carried by K_d universe sentences, x_id exemplars carry d. Under the null
(exemplars are a random draw) x_id ~ Hypergeometric(N, K_d, n_i), so the one-sided p-value is
P(X >= x_id). p-values are corrected with Benjamini-Hochberg within each neuron, across the descriptors
present in the universe (one family per neuron: the question asked is "which descriptors describe this
neuron", and the UI reads one neuron at a time; a global correction over all neurons would be far
stricter). The score is log2 enrichment of the observed over the expected count,
log2((x + c) / (n K / N + c)) with a pseudo-count c. Kept: q <= alpha and x >= min_count, ranked by p,
then score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.stats import hypergeom

from app.errors import InvalidInput

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_COUNT = 2
DEFAULT_PSEUDO_COUNT = 0.5
DEFAULT_NEURON_CHUNK = 4096
DEFAULT_CALIBRATION_FRACTION = 0.5
DEFAULT_STABILITY_TOP = 2


class Association(NamedTuple):
    """One significant descriptor of a neuron (a JSON array when serialised)."""

    descriptor: int
    score: float  # log2 enrichment
    count: int  # distinct exemplar sentences carrying the descriptor
    p: float
    q: float  # Benjamini-Hochberg adjusted within the neuron


@dataclass
class NeuronAssociations:
    """``ranked[i]``: the significant descriptors of neuron i, best first."""

    ranked: list[list[Association]]
    exemplar_counts: np.ndarray  # [neuron] distinct exemplars inside the universe
    universe_size: int
    params: dict = field(default_factory=dict)

    def top(self, k: int) -> list[list[int]]:
        """The first ``k`` descriptor indices of every neuron."""
        return [[a.descriptor for a in ranked[:k]] for ranked in self.ranked]

    def to_dict(self) -> dict:
        return {
            "ranked": [[list(a) for a in ranked] for ranked in self.ranked],
            "exemplar_counts": self.exemplar_counts.tolist(),
            "universe_size": self.universe_size,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: dict) -> NeuronAssociations:
        ranked = [
            [Association(int(d), float(s), int(c), float(p), float(q)) for d, s, c, p, q in row]
            for row in data["ranked"]
        ]
        counts = np.asarray(data["exemplar_counts"], dtype=np.int64)
        return cls(ranked, counts, int(data["universe_size"]), dict(data.get("params", {})))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted q-values along the last axis (each row one family); NaN entries are not tested."""
    p = np.asarray(p, dtype=np.float64)
    tested = ~np.isnan(p)
    m = tested.sum(axis=-1, keepdims=True)  # [..., 1]
    order = np.argsort(np.where(tested, p, np.inf), axis=-1, kind="stable")
    sorted_p = np.take_along_axis(np.where(tested, p, np.inf), order, axis=-1)
    rank = np.arange(1, p.shape[-1] + 1)
    scaled = np.where(np.isfinite(sorted_p), sorted_p * m / rank, np.inf)
    stepped = np.minimum.accumulate(scaled[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(stepped)
    np.put_along_axis(q, order, np.minimum(stepped, 1.0), axis=-1)
    return np.where(tested, q, np.nan)


def exemplar_counts(
    exemplars: np.ndarray, tags: np.ndarray, universe: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct-exemplar counts: x [neuron, descriptor] and n [neuron].

    ``exemplars`` [neuron, k] sentence ids (-1 = padding); ids outside ``universe`` and repeats are ignored.
    ``tags`` [sentence, descriptor] bool over all sentence ids; ``universe`` sorted distinct sentence ids.
    """
    position = np.full(tags.shape[0], -1, dtype=np.int64)
    position[universe] = np.arange(len(universe))
    tagged = sparse.csr_matrix(tags[universe].astype(np.int32))  # [universe sentence, descriptor]
    return _counts(np.asarray(exemplars, dtype=np.int64), position, tagged)


def _counts(
    ids: np.ndarray, position: np.ndarray, tagged: sparse.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    valid = (ids >= 0) & (ids < len(position))
    columns = np.where(valid, position[np.where(valid, ids, 0)], -1)  # [neuron, k] universe positions
    rows, cols = np.nonzero(columns >= 0)
    member = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, columns[rows, cols])), shape=(len(ids), tagged.shape[0])
    )
    member.sum_duplicates()
    member.data[:] = 1  # a sentence repeated among a neuron's exemplars counts once
    counts = (member @ tagged).toarray().astype(np.int64)
    return counts, np.asarray(member.sum(axis=1)).ravel().astype(np.int64)


def _chunk_stats(
    x: np.ndarray, n: np.ndarray, base: np.ndarray, universe_size: int, pseudo_count: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p, q, score for counts x [neuron, descriptor], exemplars n [neuron], base counts K [descriptor]."""
    draws = np.broadcast_to(n[:, None], x.shape)
    successes = np.broadcast_to(base[None, :], x.shape)
    p = np.ones(x.shape, dtype=np.float64)
    hit = x > 0  # P(X >= 0) = 1: only hits need the distribution
    p[hit] = _upper_tail(x[hit], successes[hit], draws[hit], universe_size)
    p[:, base == 0] = np.nan  # a descriptor absent from the universe is not tested
    q = benjamini_hochberg(p)
    expected = draws * successes / universe_size
    score = np.log2((x + pseudo_count) / (expected + pseudo_count))
    return p, q, score


def _upper_tail(x: np.ndarray, successes: np.ndarray, draws: np.ndarray, total: int) -> np.ndarray:
    """P(X >= x) for X ~ Hypergeometric(total, successes, draws), each distinct triple computed once.

    x and draws are at most k and successes takes one value per descriptor, so the triples repeat a lot.
    """
    small, large = int(draws.max(initial=0)) + 1, total + 1  # x <= draws <= k; successes <= total
    unique, inverse = np.unique((x * small + draws) * large + successes, return_inverse=True)
    pair, unique_successes = np.divmod(unique, large)
    unique_x, unique_draws = np.divmod(pair, small)
    tail = hypergeom.sf(unique_x - 1, total, unique_successes, unique_draws)
    return np.clip(tail, 0.0, 1.0)[inverse]


def associate(
    exemplars: np.ndarray,
    tags: np.ndarray,
    universe: np.ndarray | None = None,
    alpha: float = DEFAULT_ALPHA,
    min_count: int = DEFAULT_MIN_COUNT,
    pseudo_count: float = DEFAULT_PSEUDO_COUNT,
    chunk: int = DEFAULT_NEURON_CHUNK,
) -> NeuronAssociations:
    """Significant descriptors per neuron. ``exemplars`` [neuron, k] (-1 padding), ``tags`` [sentence, descr].

    ``universe`` (default: all sentences) restricts both the exemplars and the base rates, e.g. to a
    calibration split. Vectorised over neurons in chunks of ``chunk`` to bound memory.
    """
    exemplars, tags = np.atleast_2d(np.asarray(exemplars)), np.asarray(tags, dtype=bool)
    if tags.ndim != 2:
        raise InvalidInput("tags must be a [sentence, descriptor] matrix.")
    universe = (
        np.arange(tags.shape[0]) if universe is None else np.unique(np.asarray(universe, dtype=np.int64))
    )
    if len(universe) == 0 or universe[0] < 0 or universe[-1] >= tags.shape[0]:
        raise InvalidInput(f"universe must be non-empty sentence ids in [0, {tags.shape[0]}).")
    if not 0 < alpha <= 1 or min_count < 1 or pseudo_count <= 0:
        raise InvalidInput("Need 0 < alpha <= 1, min_count >= 1 and pseudo_count > 0.")
    base = tags[universe].sum(axis=0).astype(np.int64)  # [descriptor]
    position = np.full(tags.shape[0], -1, dtype=np.int64)
    position[universe] = np.arange(len(universe))
    tagged = sparse.csr_matrix(tags[universe].astype(np.int32))  # [universe sentence, descriptor]
    ranked: list[list[Association]] = []
    sizes = []
    for start in range(0, len(exemplars), chunk):
        x, n = _counts(exemplars[start : start + chunk].astype(np.int64), position, tagged)
        p, q, score = _chunk_stats(x, n, base, len(universe), pseudo_count)
        keep = (q <= alpha) & (x >= min_count)  # NaN q compares False
        ranked.extend(_rank_row(keep[i], x[i], p[i], q[i], score[i]) for i in range(len(keep)))
        sizes.append(n)
    params = {"alpha": alpha, "min_count": min_count, "pseudo_count": pseudo_count, "fdr": "bh_per_neuron"}
    counts = np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)
    return NeuronAssociations(ranked, counts, len(universe), params)


def _rank_row(keep: np.ndarray, x: np.ndarray, p: np.ndarray, q: np.ndarray, score: np.ndarray) -> list:
    chosen = np.flatnonzero(keep)
    chosen = chosen[np.lexsort((-score[chosen], p[chosen]))]
    return [Association(int(d), float(score[d]), int(x[d]), float(p[d]), float(q[d])) for d in chosen]


def split_sentences(
    n: int, seed: int = 0, fraction: float = DEFAULT_CALIBRATION_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted calibration and held-out sentence ids: a seeded random ``fraction`` of range(n) and the rest."""
    if n < 2 or not 0 < fraction < 1:
        raise InvalidInput("Splitting needs at least two sentences and 0 < fraction < 1.")
    size = min(max(int(round(n * fraction)), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:size]), np.sort(order[size:])


def _ranked_lists(associations: NeuronAssociations | list[list[Association]]) -> list[list[Association]]:
    return associations.ranked if isinstance(associations, NeuronAssociations) else associations


def association_stability(
    calibration: NeuronAssociations | list[list[Association]],
    heldout: NeuronAssociations | list[list[Association]],
    top: int = DEFAULT_STABILITY_TOP,
) -> np.ndarray:
    """Per-neuron Jaccard index of the top-``top`` descriptor sets of two splits, [neuron].

    NaN where neither split gives the neuron any descriptor (undefined; average with ``np.nanmean``).
    """
    first, second = _ranked_lists(calibration), _ranked_lists(heldout)
    if len(first) != len(second):
        raise InvalidInput("Both associations must cover the same neurons.")
    jaccard = np.full(len(first), np.nan)
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        left, right = {x.descriptor for x in a[:top]}, {x.descriptor for x in b[:top]}
        if left or right:
            jaccard[i] = len(left & right) / len(left | right)
    return jaccard


def precision_recall_at_k(
    predicted: list[list[int]], truth: list[set[int]], k: int
) -> tuple[float, float, int]:
    """Macro precision@k and recall@k of ranked predictions against true descriptor sets.

    Evaluated neurons: those with at least one true descriptor (their number is returned). For neuron i
    with top-k predictions P_i (the first k of ``predicted[i]``) and truth T_i:
    recall@k = mean over evaluated neurons of |P_i & T_i| / |T_i| (no prediction counts as 0);
    precision@k = mean over evaluated neurons with at least one prediction of |P_i & T_i| / |P_i|, so a
    neuron with fewer than k confident predictions is not penalised for the missing ones.
    NaN when no neuron qualifies.
    """
    if len(predicted) != len(truth) or k < 1:
        raise InvalidInput("predicted and truth must have one entry per neuron, and k must be >= 1.")
    precisions, recalls = [], []
    for ranked, true in zip(predicted, truth, strict=True):
        if not true:
            continue
        top = set(list(dict.fromkeys(ranked))[:k])
        hits = len(top & set(true))
        recalls.append(hits / len(true))
        if top:
            precisions.append(hits / len(top))
    precision = float(np.mean(precisions)) if precisions else float("nan")
    recall = float(np.mean(recalls)) if recalls else float("nan")
    return precision, recall, len(recalls)
