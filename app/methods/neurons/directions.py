"""Random directions in activation space: the control of the illusion check.

Bolukbasi et al., "An Interpretability Illusion for BERT" (arXiv 2104.07143, 2021) show that random
directions in activation space look as "meaningful" as single neurons when read through their top
exemplars. Here each layer gets random unit directions d in R^units; a direction's activation on a token is
h . d over the same post-activation FFN output the neuron index records (for another basis, such as sparse
autoencoder features, the space that basis reads: :mod:`app.methods.neurons.units`). Its exemplars are the
sentences with the highest maximum over their non-special tokens, and they go through the same description
pipeline.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from app.methods.neurons.index import Batch, plan_batches, run_encoder
from app.methods.neurons.units import NEURONS, UnitBasis, first_tensor
from app.modeling.hooks import patch
from app.modeling.loading import LoadedModel

DEFAULT_DIRECTIONS = 256  # in all, spread evenly over the layers


def random_directions(
    loaded: LoadedModel, count: int, seed: int, basis: UnitBasis = NEURONS
) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions [count, d] in the space ``basis`` reads, and the layer of each [count] (in turn over
    the basis's direction layers)."""
    generator = np.random.default_rng(seed)
    vectors = generator.normal(size=(count, basis.direction_dimension(loaded))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    layers = np.arange(count) % len(basis.direction_modules(loaded))
    return vectors, layers


def direction_scores(
    loaded: LoadedModel,
    sentences: list[str],
    directions: np.ndarray,
    layers: np.ndarray,
    batch_size: int,
    max_tokens: int | None = None,
    basis: UnitBasis = NEURONS,
) -> np.ndarray:
    """[sentence, direction] float32: each direction's highest value over each sentence's counted tokens."""
    plan = plan_batches(loaded, sentences, batch_size, max_tokens)
    modules = basis.direction_modules(loaded)
    by_layer = {int(layer): np.flatnonzero(layers == layer) for layer in np.unique(layers)}
    weights = {layer: torch.from_numpy(directions[rows].T.copy()) for layer, rows in by_layer.items()}
    weights = {layer: matrix.to(loaded.device) for layer, matrix in weights.items()}  # [units, directions]
    scores = np.full((len(sentences), len(directions)), -np.inf, dtype=np.float32)
    for batch in plan.batches():
        found = _batch_maxima(loaded, batch, modules, weights)
        rows = batch.sentence_ids.numpy()
        for layer, columns in by_layer.items():
            scores[np.ix_(rows, columns)] = found[layer].cpu().numpy()
    return scores


def top_sentences(scores: np.ndarray, k: int) -> np.ndarray:
    """[direction, k] ids of the sentences where each direction is highest (ties: the lower id first)."""
    top = np.argsort(-scores, axis=0, kind="stable")[: min(k, scores.shape[0])]  # [k, direction]
    return top.T.astype(np.int64)


def _batch_maxima(
    loaded: LoadedModel, batch: Batch, modules: list, weights: dict[int, torch.Tensor]
) -> dict[int, torch.Tensor]:
    """Per layer, [sentence, direction] maxima over the batch's non-special tokens."""
    valid = batch.valid.to(loaded.device)[..., None]
    found: dict[int, torch.Tensor] = {}

    def project(output: torch.Tensor, layer: int) -> torch.Tensor:
        values = first_tensor(output).float() @ weights[layer]  # [batch, token, directions]
        found[layer] = values.masked_fill(~valid, float("-inf")).amax(dim=1)
        return output

    hooks = {modules[layer]: partial(project, layer=layer) for layer in weights}
    with torch.inference_mode(), patch(hooks):
        run_encoder(loaded, batch)
    return found
