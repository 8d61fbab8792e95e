"""One layer's activations at one site, streamed from a corpus, for training and applying dictionaries.

Sites: ``residual`` is the hidden state after block l (l = 0 the embedding output, l = 1..L the blocks, as
the probes count), ``ffn`` the FFN's non-linearity output of block l (l = 0..L-1, the neurons' units). Only
counted tokens are kept: special tokens ([CLS], [SEP], padding) never are, as in the neuron index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch import nn

from app.errors import InvalidInput
from app.methods.callbacks import Exclusive, no_exclusion
from app.methods.features.sae import TopKSae
from app.methods.neurons.corpora import plan_batches
from app.methods.neurons.index import run_encoder
from app.modeling.hooks import capture
from app.modeling.loading import LoadedModel

Site = Literal["residual", "ffn"]
SITES: tuple[Site, ...] = ("residual", "ffn")


def layer_range(loaded: LoadedModel, site: Site) -> range:
    """The layers a site has: residual 0..L (0 = embeddings), ffn 0..L-1."""
    return range(loaded.num_layers + 1) if site == "residual" else range(loaded.num_layers)


def site_module(loaded: LoadedModel, layer: int, site: Site) -> nn.Module:
    """The module whose output is the activation at (layer, site); a clear error out of range."""
    if site not in SITES:
        raise InvalidInput(f"Unknown site {site!r}: use one of {', '.join(SITES)}.")
    layers = layer_range(loaded, site)
    if layer not in layers:
        raise InvalidInput(
            f"Layer {layer} does not exist at site {site!r} of {loaded.name}: "
            f"use {layers.start}-{layers.stop - 1}."
        )
    if site == "ffn":
        return loaded.adapter.ffn_activation_module(loaded.model, layer)
    if layer == 0:
        return loaded.adapter.embedding_module(loaded.model)
    return loaded.adapter.block(loaded.model, layer - 1)


def site_dimension(loaded: LoadedModel, site: Site) -> int:
    """The width of the activation vectors at a site."""
    return loaded.num_units if site == "ffn" else loaded.hidden_size


def activation_chunks(
    loaded: LoadedModel,
    sentences: list[str],
    layer: int,
    site: Site,
    *,
    batch_size: int = 32,
    max_tokens: int | None = None,
    exclusive: Exclusive = no_exclusion,
) -> Iterator[torch.Tensor]:
    """[token, d] float32 on the CPU per batch: the counted tokens' activations at (layer, site)."""
    module = site_module(loaded, layer, site)
    with exclusive():
        plan = plan_batches(loaded, sentences, batch_size, max_tokens)
    for batch in plan.batches():
        with exclusive(), torch.inference_mode(), capture({"x": module}) as captured:
            run_encoder(loaded, batch)
            values = captured["x"][batch.valid.to(loaded.device)].float().cpu()
        yield values


@torch.no_grad()
def feature_maxima(
    loaded: LoadedModel,
    sae: TopKSae,
    layer: int,
    site: Site,
    sentences: list[str],
    *,
    batch_size: int = 32,
    max_tokens: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence, each feature's highest code [sentence, 1, latent] and each dimension's highest value of
    the layer itself [sentence, 1, d] (the space random directions are drawn in), over counted tokens; NaN
    for a sentence with none. The features' counterpart of the neurons' ``sentence_activations``."""
    module = site_module(loaded, layer, site)
    plan = plan_batches(loaded, sentences, batch_size, max_tokens)
    sae = sae.to(loaded.device)
    codes = np.full((len(sentences), 1, sae.width), np.nan, dtype=np.float32)
    raw = np.full((len(sentences), 1, site_dimension(loaded, site)), np.nan, dtype=np.float32)
    for batch in plan.batches():
        with torch.inference_mode(), capture({"x": module}) as captured:
            run_encoder(loaded, batch)
        x = captured["x"].float()  # [batch, token, d]
        valid = batch.valid.to(loaded.device)[..., None]
        z = sae.encode(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:2], sae.width)
        rows = batch.sentence_ids.numpy()
        for target, values in ((codes, z), (raw, x)):
            top = values.masked_fill(~valid, float("-inf")).amax(dim=1).cpu().numpy()  # [batch, width]
            target[rows, 0] = np.where(np.isneginf(top), np.nan, top)
    return codes, raw
