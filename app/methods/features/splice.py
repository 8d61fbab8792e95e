"""What a dictionary costs downstream: the model with one site's activations replaced by their reconstruction.

:func:`spliced` replaces, in every forward pass while it is entered, the counted tokens' activations at
(layer, site) by the dictionary's reconstruction (special tokens and padding keep theirs), and the pass
continues, as Gao et al. (2024) measure a language model's loss with the autoencoder spliced in. Reported:

- :func:`splice_cost`: how often the model's default target keeps its predicted class, the mean absolute
  change of that class's probability, the mean cosine of the last layer's token vectors with and without;
- :func:`probe_cost`: a trained structural probe's UUAS at that layer (Hewitt & Manning 2019) on treebank
  sentences, with and without (residual site only: the probes read the residual stream).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from app.errors import InputTooLong
from app.methods.features.activations import Site, site_module
from app.methods.features.sae import TopKSae
from app.methods.probes.features import compute_word_features
from app.methods.probes.probe_maps import ProbeWeights
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.treebank import TreeSentence
from app.modeling.encoding import encode_for
from app.modeling.hooks import capture
from app.modeling.loading import LoadedModel
from app.modeling.targets import bind_target


@contextmanager
def spliced(loaded: LoadedModel, sae: TopKSae, layer: int, site: Site) -> Iterator[None]:
    """Forward passes inside run with (layer, site) replaced by its reconstruction on counted tokens."""
    module = site_module(loaded, layer, site)
    special = torch.tensor(sorted(set(loaded.tokenizer.all_special_ids)), device=loaded.device)
    sae = sae.to(loaded.device)
    counted: list[torch.Tensor] = []

    def remember(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        keep = ~torch.isin(ids, special)
        counted[:] = [keep if mask is None else keep & mask.bool()]

    def replace(_module: torch.nn.Module, _inputs: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        where = counted[0]
        new = hidden.clone()
        new[where] = sae.decode(sae.encode(hidden[where].float())).to(hidden.dtype)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handles = [
        loaded.model.register_forward_pre_hook(remember, with_kwargs=True),
        module.register_forward_hook(replace),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def splice_cost(
    loaded: LoadedModel, sae: TopKSae, layer: int, site: Site, texts: list[str], max_tokens: int = 512
) -> dict[str, Any]:
    """Agreement, probability change and last-layer cosine with the reconstruction spliced in."""
    last = loaded.adapter.block(loaded.model, loaded.num_layers - 1)
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
        with capture({"last": last}) as changed, spliced(loaded, sae, layer, site):
            after = target.logits(**inputs)[0].double().softmax(-1)
        predicted = int(before.argmax())
        agree.append(predicted == int(after.argmax()))
        change.append(float((after[predicted] - before[predicted]).abs()))
        a, b = clean["last"][0, counted].double(), changed["last"][0, counted].double()
        cosine.append(float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean()))
    return {
        "sentences": len(agree),
        "prediction_agreement": float(np.mean(agree)) if agree else None,
        "mean_abs_probability_change": float(np.mean(change)) if change else None,
        "last_layer_cosine": float(np.mean(cosine)) if cosine else None,
    }


@torch.no_grad()
def probe_cost(
    loaded: LoadedModel,
    sae: TopKSae,
    layer: int,
    weights: ProbeWeights,
    sentences: list[TreeSentence],
    max_tokens: int = 512,
) -> dict[str, Any]:
    """The distance probe's UUAS at ``layer`` (residual) on ``sentences``, as trained and with the splice."""
    single = ProbeWeights([layer], *(maps[None] for maps in weights.for_layer(layer)))
    clean = compute_word_features(loaded, sentences, max_tokens=max_tokens)
    with spliced(loaded, sae, layer, "residual"):
        changed = compute_word_features(loaded, sentences, max_tokens=max_tokens)
    before = evaluate_probes(clean, single)["layers"][str(layer)]["uuas"]
    after = evaluate_probes(changed, single)["layers"][str(layer)]["uuas"]
    return {"sentences": len(clean.sentences), "uuas": before, "uuas_spliced": after}
