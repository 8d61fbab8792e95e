"""Model-parameter randomisation test for attributions.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency Maps", NeurIPS 2018,
https://arxiv.org/abs/1810.03292 — re-initialise the encoder's blocks from the top down (cascading: the top
block, then the top two, ...) and recompute the attribution for the same input and target. A method that
explains the model should change; a method whose map barely moves is explaining the input, not the weights.
The target's read-out (classification head, fitted head or zero-shot label embeddings) is kept fixed.
Output per step: Spearman's rho of the scores (and of their absolute values) with the original ones, over the
non-special tokens.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
from pydantic import BaseModel
from scipy.stats import spearmanr

from app.methods.base import Method
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    value = spearmanr(a, b).statistic
    return 0.0 if np.isnan(value) else float(value)


def randomisation_test(
    loaded: LoadedModel,
    encoded: Encoded,
    method: Method,
    params: BaseModel,
    target: BoundTarget,
    original: np.ndarray,
    seed: int = 0,
) -> dict:
    """Cascading randomisation of the top 1..L blocks; the original model is never modified."""
    words = [i for i, special in enumerate(encoded.special_mask) if not special]
    model = copy.deepcopy(loaded.model)
    shadow = dataclasses.replace(loaded, model=model)
    bound = dataclasses.replace(target, loaded=shadow)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    rows = {"randomised_blocks": [0], "spearman": [1.0], "spearman_abs": [1.0], "scores": [original.tolist()]}
    try:
        for count in range(1, loaded.num_layers + 1):
            block = loaded.adapter.block(model, loaded.num_layers - count)
            block.apply(model._init_weights)
            scores = method.run(shadow, encoded, params, bound).scores
            rows["randomised_blocks"].append(count)
            rows["spearman"].append(_rho(original[words], scores[words]))
            rows["spearman_abs"].append(_rho(np.abs(original[words]), np.abs(scores[words])))
            rows["scores"].append(scores.tolist())
    finally:
        torch.random.set_rng_state(generator_state)
        del model
    return rows
