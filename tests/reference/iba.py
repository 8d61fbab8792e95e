"""Reference-style IBA (Jiang et al. 2020) as the published code runs it: every weight requires grad,
the whole model runs forward at every step, and a forward hook swaps the block's output for Z. The dataset
estimator's statistics are recomputed here one sentence at a time in float64 (Schulz et al.'s
per-feature mean and std over the corpus tokens), independently of the batched implementation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from app.data import SAMPLE_CORPUS
from app.methods.attribution.iba import DATASET_MIN_SIGMA, SENTENCE_SIGMA, IbaParams, default_layer
from app.modeling.encoding import Encoded
from app.modeling.hooks import patch
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget


def iba_reference(
    loaded: LoadedModel, encoded: Encoded, target: BoundTarget, params: IbaParams
) -> torch.Tensor:
    """Capacity per token [token] with the estimator ``params.estimator``."""
    model, adapter = loaded.model, loaded.adapter
    layer = default_layer(loaded.num_layers) if params.layer is None else params.layer
    with torch.no_grad():
        hidden = adapter.encoder(model)(**encoded.model_inputs(), output_hidden_states=True).hidden_states
    signal = hidden[layer + 1]
    if params.estimator == "sentence":
        mean, std = hidden[layer], torch.full_like(signal, SENTENCE_SIGMA)
    else:
        means, stds = corpus_statistics_reference(loaded)
        mean, std = means[layer + 1].float(), stds[layer + 1].float()
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
                state["z"] = (mu + torch.exp(0.5 * torch.log(var).clamp(-10, 10)) * noise) * std + mean
                loss = F.cross_entropy(target.logits(**batch), labels) + params.beta * capacity.mean()
                optimiser.zero_grad()
                model.zero_grad()
                loss.backward()
                optimiser.step()
    finally:
        model.requires_grad_(False)
        model.zero_grad(set_to_none=True)
    return capacity.detach()[0].sum(-1)


@torch.no_grad()
def corpus_statistics_reference(loaded: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std [hidden state, hidden] over every token of the sample corpus (float64)."""
    sentences = [line for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    states = []
    for sentence in sentences:
        batch = loaded.tokenizer(
            sentence, truncation=True, max_length=min(128, loaded.max_positions), return_tensors="pt"
        )
        if not loaded.uses_token_types:
            batch.pop("token_type_ids", None)
        output = loaded.adapter.encoder(loaded.model)(**batch, output_hidden_states=True)
        states.append(torch.stack(output.hidden_states)[:, 0].double())  # [state, token, hidden]
    tokens = torch.cat(states, dim=1)
    return tokens.mean(dim=1), tokens.std(dim=1, unbiased=False).clamp_min(DATASET_MIN_SIGMA)
