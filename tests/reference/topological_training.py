"""Reference losses of the tree topological probe (Li, Yin & Lin, EMNLP 2023), one probe at a time.

``losses_loop``: for every mode, layer and sentence separately, pred_i = sum_r (B h_i)_r^2 in float64, the
labels from the plain-loop operator, the squared errors summed over the batch's words and divided by their
count: what ``app.methods.probes.topological._losses`` computes for all of them in one batched product.
"""

from __future__ import annotations

import numpy as np

from tests.reference.topological import pseudo_depths_loop

MODES = ("sp", "ssp", "essp")


def losses_loop(vectors: np.ndarray, depths: list[list[int]], maps: np.ndarray) -> np.ndarray:
    """vectors [layer, sentence, word, hidden] (padded), gold depths per sentence (root 0), maps [mode,
    layer, rank, hidden] -> [mode, layer] mean squared error over the real words."""
    result = np.zeros(maps.shape[:2])
    words = sum(len(sentence) for sentence in depths)
    for mode_index, mode in enumerate(MODES):
        for layer in range(maps.shape[1]):
            total = 0.0
            for row, gold in enumerate(depths):
                h = vectors[layer, row, : len(gold)].astype(np.float64)
                predicted = ((h @ maps[mode_index, layer].astype(np.float64).T) ** 2).sum(-1).tolist()
                labels = _labels(mode, predicted, gold)
                total += sum((p - y) ** 2 for p, y in zip(predicted, labels, strict=True))
            result[mode_index, layer] = total / words
    return result


def _labels(mode: str, predicted: list[float], gold: list[int]) -> list[float]:
    if mode == "sp":
        return [depth + 1.0 for depth in gold]
    labels = pseudo_depths_loop(predicted)
    if mode == "ssp":
        return [float(label) for label in labels]
    order = sorted(range(len(predicted)), key=lambda i: predicted[i])  # ESSP: sorted labels reversed
    ascending = [labels[i] for i in order]
    reversed_labels = [0.0] * len(predicted)
    for position, index in enumerate(order):
        reversed_labels[index] = float(ascending[len(order) - 1 - position])
    return reversed_labels
