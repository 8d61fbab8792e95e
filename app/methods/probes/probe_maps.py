"""Structural probes: linear maps under which squared distances and norms of word vectors approximate
tree distances and tree depths.

Hewitt & Manning, "A Structural Probe for Finding Syntax in Word Representations", NAACL 2019
(https://aclanthology.org/N19-1419). Distance probe: d_B(h_i, h_j) = ||B (h_i - h_j)||^2 ~ d_tree(i, j);
depth probe: ||B h_i||^2 ~ depth(i). Loss as in the paper: L1, normalised by the number of word pairs
(distance) or words (depth) of each sentence, averaged over the batch; Adam, learning rate divided by 10
when the dev loss stops improving, early stopping on dev. The probes of all layers train together in one
batched computation (their gradients are independent), each layer with its own learning rate and best
checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from app.methods.probes.batches import ProbeBatch, shuffled

DEFAULT_RANK = 128
LEARNING_RATE = 1e-3
MAX_EPOCHS = 30
PATIENCE = 3  # epochs without dev improvement before a layer stops counting
MIN_IMPROVEMENT = 1e-4
INIT_RANGE = 0.05
Progress = Callable[[int, int], None]


@dataclass
class ProbeWeights:
    """Trained probes of several layers: distance and depth maps [layer, rank, hidden]."""

    layers: list[int]
    distance: np.ndarray
    depth: np.ndarray
    history: dict = field(default_factory=dict)

    def for_layer(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        index = self.layers.index(layer)
        return self.distance[index], self.depth[index]


def predicted_distances(vectors: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """[layer, sentence, word, hidden] x [layer, rank, hidden] -> [layer, sentence, word, word]."""
    projected = torch.einsum("lswh,lrh->lswr", vectors, maps)
    squared = (projected**2).sum(-1)
    gram = projected @ projected.transpose(-1, -2)
    return (squared.unsqueeze(-1) + squared.unsqueeze(-2) - 2 * gram).clamp_min(0.0)


def predicted_depths(vectors: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """[layer, sentence, word, hidden] x [layer, rank, hidden] -> [layer, sentence, word]."""
    return (torch.einsum("lswh,lrh->lswr", vectors, maps) ** 2).sum(-1)


def probe_losses(
    batch: ProbeBatch, layers: list[int], distance_maps: torch.Tensor, depth_maps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer L1 losses [layer] of the distance and depth probes on one batch."""
    vectors = batch.layer_vectors(layers)
    mask = batch.mask.float()
    pair_mask = mask.unsqueeze(-1) * mask.unsqueeze(-2)
    distance_error = (predicted_distances(vectors, distance_maps) - batch.distances).abs() * pair_mask
    depth_error = (predicted_depths(vectors, depth_maps) - batch.depths).abs() * mask
    distance = (distance_error.sum((-1, -2)) / batch.lengths**2).mean(-1)
    depth = (depth_error.sum(-1) / batch.lengths).mean(-1)
    return distance, depth


def train_structural_probes(
    train: list[ProbeBatch],
    dev: list[ProbeBatch],
    layers: list[int],
    hidden: int,
    *,
    rank: int = DEFAULT_RANK,
    max_epochs: int = MAX_EPOCHS,
    seed: int = 0,
    progress: Progress | None = None,
) -> ProbeWeights:
    """Distance and depth probes for every layer in ``layers``, each kept at its best dev loss.

    ``progress(step, max_steps)`` is called after every batch (it may raise to cancel).
    """
    generator = torch.Generator().manual_seed(seed)
    count = len(layers)
    params = [
        (torch.rand(rank, hidden, generator=generator) * 2 - 1).mul_(INIT_RANGE).requires_grad_()
        for _ in range(2 * count)
    ]  # distance maps of every layer, then depth maps
    optimiser = torch.optim.Adam([{"params": [p], "lr": LEARNING_RATE} for p in params])
    best = [float("inf")] * (2 * count)
    best_maps = [p.detach().clone() for p in params]
    stale = [0] * (2 * count)
    history: dict[str, list] = {"dev_distance": [], "dev_depth": []}
    for epoch in range(max_epochs):
        for step, batch in enumerate(shuffled(train, seed + epoch)):
            distance, depth = probe_losses(
                batch, layers, torch.stack(params[:count]), torch.stack(params[count:])
            )
            optimiser.zero_grad()
            (distance.sum() + depth.sum()).backward()
            optimiser.step()
            if progress:
                progress(epoch * len(train) + step + 1, max_epochs * len(train))
        losses = _dev_losses(dev, layers, params, count)
        history["dev_distance"].append(losses[:count].tolist())
        history["dev_depth"].append(losses[count:].tolist())
        for index, loss in enumerate(losses.tolist()):
            if loss < best[index] - MIN_IMPROVEMENT:
                best[index], stale[index] = loss, 0
                best_maps[index] = params[index].detach().clone()
            else:
                stale[index] += 1
                optimiser.param_groups[index]["lr"] *= 0.1
        if min(stale) >= PATIENCE:
            break
    history["epochs"] = epoch + 1
    history["best_dev_distance"], history["best_dev_depth"] = best[:count], best[count:]
    return ProbeWeights(
        layers=list(layers),
        distance=torch.stack(best_maps[:count]).numpy(),
        depth=torch.stack(best_maps[count:]).numpy(),
        history=history,
    )


@torch.no_grad()
def _dev_losses(
    dev: list[ProbeBatch], layers: list[int], params: list[torch.Tensor], count: int
) -> torch.Tensor:
    """Mean per-sentence dev loss [2 * layer] (distance losses, then depth losses)."""
    total = torch.zeros(2 * count)
    sentences = 0
    for batch in dev:
        distance, depth = probe_losses(
            batch, layers, torch.stack(params[:count]), torch.stack(params[count:])
        )
        size = len(batch.indices)
        total += torch.cat([distance, depth]) * size
        sentences += size
    return total / max(sentences, 1)
