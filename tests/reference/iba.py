"""Reference-style IBA (Jiang et al. 2020) as the published code runs it: every weight requires grad,
the whole model runs forward at every step, and a forward hook swaps the block's output for Z."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from app.methods.attribution.iba import SENTENCE_SIGMA, IbaParams, default_layer
from app.modeling.encoding import Encoded
from app.modeling.hooks import patch
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


def iba_reference(
    loaded: LoadedModel, encoded: Encoded, target: BoundTarget, params: IbaParams
) -> torch.Tensor:
    """Capacity per token [token] with the sentence estimator."""
    model, adapter = loaded.model, loaded.adapter
    layer = default_layer(loaded.num_layers) if params.layer is None else params.layer
    with torch.no_grad():
        hidden = adapter.encoder(model)(**encoded.model_inputs(), output_hidden_states=True).hidden_states
    signal, mean = hidden[layer + 1], hidden[layer]
    std = torch.full_like(signal, SENTENCE_SIGMA)
    alpha = torch.full_like(signal, params.alpha_init).requires_grad_(True)
    optimiser = torch.optim.Adam([alpha], lr=params.lr)
    generator = torch.Generator(device=signal.device).manual_seed(params.seed)
    batch = {name: t.expand(params.samples, *t.shape[1:]) for name, t in encoded.model_inputs().items()}
    labels = torch.full((params.samples,), target.index, device=signal.device)
    state: dict[str, torch.Tensor] = {}
    model.requires_grad_(True)
    try:
        with torch.enable_grad(), patch({adapter.block(model, layer): lambda _output: state["z"]}):
            for _ in range(params.steps):
                keep = torch.sigmoid(alpha)
                var = (1 - keep) ** 2
                mu = keep * (signal - mean) / std
                capacity = -0.5 * (1 + torch.log(var) - mu**2 - var)
                noise = torch.randn(
                    (params.samples, *signal.shape[1:]), generator=generator, device=signal.device
                )
                state["z"] = (mu + var.sqrt() * noise) * std + mean
                loss = F.cross_entropy(target.logits(**batch), labels) + params.beta * capacity.mean()
                optimiser.zero_grad()
                model.zero_grad()
                loss.backward()
                optimiser.step()
    finally:
        model.requires_grad_(False)
        model.zero_grad(set_to_none=True)
    return capacity.detach()[0].sum(-1)
