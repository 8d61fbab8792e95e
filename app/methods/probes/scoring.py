"""Per-layer structural probe evaluation with the baselines a reader needs (Hewitt & Manning, NAACL 2019):
the right-branching chain and the layer-0 (embedding) probe come with every report; the probe trained on a
randomly initialised copy of the model is the control (see ``features.random_copy``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from app.methods.probes.batches import ProbeBatch, make_batches
from app.methods.probes.features import WordFeatures
from app.methods.probes.metrics import GoldTree, MetricAccumulator
from app.methods.probes.probe_maps import ProbeWeights, predicted_depths, predicted_distances

Progress = Callable[[int, int], None]


@torch.no_grad()
def predict_batch(batch: ProbeBatch, weights: ProbeWeights) -> tuple[np.ndarray, np.ndarray]:
    """Predicted distances [layer, sentence, word, word] and depths [layer, sentence, word]."""
    vectors = batch.layer_vectors(weights.layers)
    distances = predicted_distances(vectors, torch.from_numpy(weights.distance))
    depths = predicted_depths(vectors, torch.from_numpy(weights.depth))
    return distances.numpy(), depths.numpy()


def evaluate_probes(features: WordFeatures, weights: ProbeWeights, progress: Progress | None = None) -> dict:
    """UUAS, distance Spearman, root accuracy and depth Spearman per layer, plus the chain baseline."""
    accumulator = MetricAccumulator(weights.layers)
    batches = make_batches(features)
    for number, batch in enumerate(batches):
        distances, depths = predict_batch(batch, weights)
        for row, index in enumerate(batch.indices):
            gold = GoldTree(features.sentences[index])
            count = gold.sentence.length
            accumulator.add(gold, distances[:, row, :count, :count], depths[:, row, :count])
        if progress:
            progress(number + 1, len(batches))
    return {
        "layers": accumulator.result(),
        "baselines": {"right_branching_uuas": accumulator.chain_uuas()},
        "sentences": features.report(),
    }
