"""What a dictionary costs downstream: the model with one site's activations replaced by their reconstruction.

For each held-out sentence, the counted tokens' activations at (layer, site) are replaced by the
dictionary's reconstruction and the forward pass continues (as Gao et al. 2024 measure the language-model
loss with the autoencoder spliced in). Reported: how often the model's default target keeps its predicted
class, the mean absolute change of the predicted class's probability, and the mean cosine between the last
layer's token vectors with and without the splice (1.0: no change downstream).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from app.errors import InputTooLong
from app.methods.features.activations import Site, site_module
from app.methods.features.sae import TopKSae
from app.modeling.encoding import encode_for
from app.modeling.hooks import capture, patch
from app.modeling.loading import LoadedModel
from app.modeling.targets import bind_target


@torch.no_grad()
def splice_cost(
    loaded: LoadedModel, sae: TopKSae, layer: int, site: Site, texts: list[str], max_tokens: int = 512
) -> dict[str, Any]:
    """Agreement, probability change and last-layer cosine with the reconstruction spliced in."""
    module = site_module(loaded, layer, site)
    last = loaded.adapter.block(loaded.model, loaded.num_layers - 1)
    sae = sae.to(loaded.device)
    agree, change, cosine = [], [], []
    for text in texts:
        try:
            encoded = encode_for(loaded, text, max_tokens=max_tokens)
        except InputTooLong:
            continue
        counted = torch.tensor([not special for special in encoded.special_mask], device=loaded.device)
        target = bind_target(loaded, None, encoded)
        inputs = encoded.model_inputs()
        with capture({"last": last}) as clean:
            before = target.logits(**inputs)[0].double().softmax(-1)
        with capture({"last": last}) as spliced, patch({module: _reconstructing(sae, counted)}):
            after = target.logits(**inputs)[0].double().softmax(-1)
        predicted = int(before.argmax())
        agree.append(predicted == int(after.argmax()))
        change.append(float((after[predicted] - before[predicted]).abs()))
        a, b = clean["last"][0, counted].double(), spliced["last"][0, counted].double()
        cosine.append(float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean()))
    return {
        "sentences": len(agree),
        "prediction_agreement": float(np.mean(agree)) if agree else None,
        "mean_abs_probability_change": float(np.mean(change)) if change else None,
        "last_layer_cosine": float(np.mean(cosine)) if cosine else None,
    }


def _reconstructing(sae: TopKSae, counted: torch.Tensor) -> Callable[[Any], Any]:
    def replace(output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        new = hidden.clone()
        x = hidden[0, counted].float()
        new[0, counted] = sae.decode(sae.encode(x)).to(hidden.dtype)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return replace
