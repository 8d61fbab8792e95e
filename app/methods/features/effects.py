"""What a feature's decoder direction touches: nearest neurons, token directions, the syntax probe.

A TopK SAE feature writes ``scale * d`` (d its unit decoder row) into the activations it reads
(:mod:`app.methods.features.sae`). Three readings of d, each a plain linear-algebra fact about the weights,
none a causal claim:

- **Nearest neurons.** At the FFN site d lives in neuron space: its largest coordinates are the neurons it
  is made of. In the residual stream (after block l), the neurons of blocks < l write along their output
  weight columns W_out[:, i]; the nearest are those with the largest |cos(d, W_out[:, i])|. BERT's
  post-block LayerNorm rescales what they write, so this is a geometric, not a causal, neighbourhood.
- **Token directions.** The vocabulary items whose input embeddings have the largest cosine with d (with
  the FFN site, with W_out d). With BERT's tied MLM decoder this is the direct effect on the masked-token
  logits up to the head's transform (dense, GELU, LayerNorm), which it leaves out: a logit-lens reading.
- **Probe effect** (residual site): how strongly the structural distance probe B (Hewitt & Manning 2019)
  at that layer sees d, ||B d||, against the median over random unit directions in the same space: a
  ratio above 1 means moving along this feature changes the probe's parse distances more than a random
  direction would.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from app.methods.features.dictionary import FeatureDictionary
from app.modeling.loading import LoadedModel

NEAREST = 10
RANDOM_PROBE_DIRECTIONS = 1000


def _output_weights(loaded: LoadedModel, layer: int) -> np.ndarray:
    """[hidden, unit] the FFN output projection's weight of block ``layer``."""
    projection = loaded.adapter.ffn_output_projection(loaded.model, layer)
    return projection.weight.detach().float().cpu().numpy()


def residual_direction(loaded: LoadedModel, dictionary: FeatureDictionary, feature: int) -> np.ndarray:
    """The feature's direction in the residual stream: d itself, or W_out d at the FFN site (unit norm)."""
    direction = np.asarray(dictionary.decoder[feature], dtype=np.float64)
    if dictionary.site == "ffn":
        direction = _output_weights(loaded, dictionary.layer).astype(np.float64) @ direction
    return direction / max(np.linalg.norm(direction), 1e-12)


def nearest_neurons(
    loaded: LoadedModel, dictionary: FeatureDictionary, feature: int, count: int = NEAREST
) -> dict[str, Any]:
    """The neurons nearest the feature's decoder direction (see the module docstring), best first."""
    direction = np.asarray(dictionary.decoder[feature], dtype=np.float64)
    direction = direction / max(np.linalg.norm(direction), 1e-12)
    if dictionary.site == "ffn":
        order = np.argsort(-np.abs(direction), kind="stable")[:count]
        items = [{"layer": dictionary.layer, "unit": int(u), "value": float(direction[u])} for u in order]
        return {"measure": "coordinate of the unit decoder direction in neuron space", "items": items}
    if dictionary.layer == 0:
        return {"measure": None, "items": [], "skipped": "the embedding output has no neuron before it"}
    scored = []
    for layer in range(dictionary.layer):
        weights = _output_weights(loaded, layer).astype(np.float64)  # [hidden, unit]
        cosines = direction @ weights / np.maximum(np.linalg.norm(weights, axis=0), 1e-12)
        scored += [(float(value), layer, unit) for unit, value in enumerate(cosines)]
    scored.sort(key=lambda item: (-abs(item[0]), item[1], item[2]))
    items = [{"layer": layer, "unit": unit, "value": value} for value, layer, unit in scored[:count]]
    return {
        "measure": "cosine with the neuron's output weights W_out[:, i] (blocks before this layer)",
        "items": items,
    }


def token_directions(
    loaded: LoadedModel, dictionary: FeatureDictionary, feature: int, count: int = NEAREST
) -> dict[str, Any]:
    """The tokens whose input embeddings point most along (and most against) the feature's direction."""
    direction = residual_direction(loaded, dictionary, feature)
    embeddings = loaded.model.get_input_embeddings().weight.detach().float().cpu().numpy().astype(np.float64)
    cosines = embeddings @ direction / np.maximum(np.linalg.norm(embeddings, axis=1), 1e-12)
    special = set(loaded.tokenizer.all_special_ids)
    order = [int(i) for i in np.argsort(-cosines, kind="stable") if int(i) not in special]

    def listed(ids: list[int]) -> list[dict[str, Any]]:
        tokens = loaded.tokenizer.convert_ids_to_tokens(ids)
        return [{"token": token, "cosine": float(cosines[i])} for token, i in zip(tokens, ids, strict=True)]

    return {"promoted": listed(order[:count]), "suppressed": listed(order[::-1][:count])}


def probe_effect(
    direction: np.ndarray, distance_map: np.ndarray, seed: int = 0, samples: int = RANDOM_PROBE_DIRECTIONS
) -> dict[str, float]:
    """||B d|| of a unit ``direction`` [hidden] under the probe ``distance_map`` B [rank, hidden], against
    the median ||B r|| over ``samples`` random unit directions r (seeded)."""
    maps = torch.from_numpy(np.asarray(distance_map, dtype=np.float64))
    generator = np.random.default_rng(seed)
    randoms = generator.normal(size=(samples, maps.shape[1]))
    randoms /= np.linalg.norm(randoms, axis=1, keepdims=True)
    along = float(torch.linalg.vector_norm(maps @ torch.from_numpy(direction.astype(np.float64))))
    typical = float(np.median(torch.linalg.vector_norm(maps @ torch.from_numpy(randoms).T, dim=0).numpy()))
    return {
        "norm": along,
        "random_median": typical,
        "ratio": along / typical if typical > 0 else float("nan"),
    }
