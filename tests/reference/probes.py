"""Obvious references for the structural probe's tree code (:mod:`app.methods.probes.metrics`,
:mod:`app.methods.probes.treebank`): one sentence, one matrix, plain loops."""

from __future__ import annotations

import numpy as np


def spanning_tree_edges(distances: np.ndarray, keep: np.ndarray | None = None) -> set[tuple[int, int]]:
    """Undirected edges (low, high) of the minimum spanning tree over the kept words: Prim's algorithm on
    one [word, word] matrix (symmetrised), a word at a time."""
    words = [int(w) for w in (np.flatnonzero(keep) if keep is not None else range(distances.shape[-1]))]
    if len(words) < 2:
        return set()
    symmetric = (distances.astype(np.float64) + distances.T.astype(np.float64)) / 2
    in_tree, edges = {words[0]}, set()
    while len(in_tree) < len(words):
        _, a, b = min((symmetric[a, b], a, b) for a in sorted(in_tree) for b in words if b not in in_tree)
        edges.add((min(a, b), max(a, b)))
        in_tree.add(b)
    return edges


def tree_depths(heads: list[int]) -> np.ndarray:
    """[word] number of edges from the root (depth 0), walking each word's 1-based heads up to the root."""
    depths = []
    for word in range(len(heads)):
        steps, node = 0, word
        while heads[node] != 0:
            node, steps = heads[node] - 1, steps + 1
        depths.append(steps)
    return np.array(depths)
