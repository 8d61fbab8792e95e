"""Structural probe metrics (Hewitt & Manning, NAACL 2019, https://aclanthology.org/N19-1419).

- UUAS: undirected attachment score of the minimum spanning tree of the predicted distances, punctuation
  excluded (the tree is spanned over non-punctuation words and scored against the gold edges between
  them), micro-averaged over edges.
- DSpr: Spearman correlation between predicted and gold distances of each word to every word, averaged
  over the words of a sentence, then over sentences of the same length, then over lengths 5-50.
- Root accuracy: the shallowest non-punctuation word by predicted depth is the gold root.
- NSpr: Spearman correlation between predicted and gold depths, averaged as DSpr.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
from scipy.stats import rankdata

from app.methods.probes.treebank import TreeSentence, gold_edges, tree_distances

SPEARMAN_LENGTHS = (5, 50)


def spanning_tree_edges_stacked(distances: np.ndarray, keep: np.ndarray | None = None) -> list[set]:
    """Minimum spanning tree edges of each matrix of a stack [layer, word, word] (Prim, all layers at once).

    Small dense graphs: a vectorised Prim over the stack is far cheaper than a sparse-graph call per layer.
    """
    words = np.flatnonzero(keep) if keep is not None else np.arange(distances.shape[-1])
    layers = distances.shape[0]
    if len(words) < 2:
        return [set() for _ in range(layers)]
    sub = distances[:, words][:, :, words].astype(np.float64)
    sub = (sub + sub.transpose(0, 2, 1)) / 2
    rows = np.arange(layers)
    in_tree = np.zeros((layers, len(words)), dtype=bool)
    in_tree[:, 0] = True
    best = sub[:, 0].copy()
    parent = np.zeros((layers, len(words)), dtype=np.int64)
    edges: list[set] = [set() for _ in range(layers)]
    for _ in range(len(words) - 1):
        candidate = np.where(in_tree, np.inf, best).argmin(1)
        for layer, (a, b) in enumerate(zip(words[parent[rows, candidate]], words[candidate], strict=True)):
            edges[layer].add((int(min(a, b)), int(max(a, b))))
        in_tree[rows, candidate] = True
        reach = sub[rows, candidate]
        closer = reach < best
        best = np.where(closer, reach, best)
        parent = np.where(closer, candidate[:, None], parent)
    return edges


def chain_edges(keep: np.ndarray) -> set[tuple[int, int]]:
    """The right-branching baseline: each kept word attached to the next kept word."""
    words = np.flatnonzero(keep)
    return {(int(a), int(b)) for a, b in zip(words[:-1], words[1:], strict=True)}


def centred_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis, minus their mean."""
    ranks = rankdata(values, axis=-1)
    return ranks - ranks.mean(-1, keepdims=True)


def row_spearman(predicted: np.ndarray, gold: np.ndarray, *, gold_ranked: bool = False) -> np.ndarray:
    """Spearman correlation of matching rows (last axis), NaN where a row is constant."""
    ranks_p = centred_ranks(predicted)
    ranks_g = gold if gold_ranked else centred_ranks(gold)
    denominator = np.sqrt((ranks_p**2).sum(-1) * (ranks_g**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks_p * ranks_g).sum(-1) / denominator


class GoldTree:
    """What the metrics need of one gold sentence, computed once and shared by every layer."""

    def __init__(self, sentence: TreeSentence) -> None:
        self.sentence = sentence
        self.keep = ~sentence.punctuation
        self.edges = gold_edges(sentence.heads, self.keep)
        self.distances = tree_distances(sentence.heads).astype(np.float64)
        self.depths = self.distances[sentence.root]
        self.distance_ranks = centred_ranks(self.distances)
        self.depth_ranks = centred_ranks(self.depths)
        self.in_range = SPEARMAN_LENGTHS[0] <= sentence.length <= SPEARMAN_LENGTHS[1]
        self.chain_hits = len(self.edges & chain_edges(self.keep))


class MetricAccumulator:
    """Collects per-sentence results of every layer and reduces them to the four metrics per layer."""

    def __init__(self, layers: list[int]) -> None:
        self.layers = layers
        self.correct = np.zeros(len(layers))
        self.root_hits = np.zeros(len(layers))
        self.total = self.chain_correct = self.roots = 0
        self.distance_spearman: dict[int, list[np.ndarray]] = defaultdict(list)
        self.depth_spearman: dict[int, list[np.ndarray]] = defaultdict(list)

    def add(self, gold: GoldTree, distances: np.ndarray, depths: np.ndarray) -> None:
        """Predicted distances [layer, word, word] and depths [layer, word] of one sentence."""
        length = gold.sentence.length
        self.total += len(gold.edges)
        self.chain_correct += gold.chain_hits
        trees = spanning_tree_edges_stacked(distances, gold.keep)
        self.correct += [len(gold.edges & tree) for tree in trees]
        if gold.keep.any():
            self.roots += 1
            candidates = np.flatnonzero(gold.keep)
            self.root_hits += candidates[np.argmin(depths[:, candidates], axis=1)] == gold.sentence.root
        if gold.in_range:
            rho = row_spearman(distances, gold.distance_ranks, gold_ranked=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self.distance_spearman[length].append(np.nanmean(rho, axis=1))
            self.depth_spearman[length].append(row_spearman(depths, gold.depth_ranks, gold_ranked=True))

    def result(self) -> dict[str, dict[str, float | None]]:
        """Metrics per layer (layer number as a string key)."""
        distance = _length_averaged(self.distance_spearman, len(self.layers))
        depth = _length_averaged(self.depth_spearman, len(self.layers))
        return {
            str(layer): {
                "uuas": float(self.correct[i] / self.total) if self.total else None,
                "distance_spearman": distance[i],
                "root_accuracy": float(self.root_hits[i] / self.roots) if self.roots else None,
                "depth_spearman": depth[i],
            }
            for i, layer in enumerate(self.layers)
        }

    def chain_uuas(self) -> float | None:
        return self.chain_correct / self.total if self.total else None


def _length_averaged(values: dict[int, list[np.ndarray]], layers: int) -> list[float | None]:
    """Mean over sentence lengths of the mean over sentences of that length, per layer."""
    if not values:
        return [None] * layers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_length = np.stack([np.nanmean(np.stack(items), axis=0) for items in values.values()])
        means = np.nanmean(per_length, axis=0)
    return [float(value) if np.isfinite(value) else None for value in means]
