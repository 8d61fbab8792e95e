"""Information Bottleneck Attribution (IBA) for transformers.

Jiang, Tang, Xin & Lin, "Inserting Information Bottlenecks for Attribution in Transformers", Findings of
EMNLP 2020, https://aclanthology.org/2020.findings-emnlp.343/ — the per-sample bottleneck of Schulz, Sixt,
Tombari & Landgraf, "Restricting the Flow: Information Bottlenecks for Attribution", ICLR 2020,
https://arxiv.org/abs/2001.00396, inserted after one encoder block.

With R the output of block ``layer`` ([token, hidden]), mask logits alpha ([token, hidden], initialised
at 5) and lambda = sigmoid(alpha): Z = lambda * R + (1 - lambda) * eps, eps ~ N(mu, sigma^2).
Loss = cross-entropy of the explained label + beta * mean KL capacity, where the capacity per element is
KL(N(lambda (R - mu)/sigma, (1 - lambda)^2) || N(0, 1)). Only alpha is optimised (Adam); model weights are
frozen, the blocks below the bottleneck run once, the noise samples of a step run as one batch, and the noise
comes from a seeded generator (deterministic). Token attribution = capacity summed over the hidden
dimension (nats), taken from the last forward pass, as in the published code.

Estimators of mu and sigma:
* ``dataset`` (Schulz et al.'s design, the default): mu and sigma per hidden feature, estimated over the
  tokens of a corpus (the sample corpus shipped with bertscope), sigma at least 0.01; computed once per
  weights revision and cached (in memory, and on disk under the model's ``cache_dir`` when it has one).
* ``sentence`` (the per-sentence estimator of the released IBA BERT code): mu = the sentence's own input to
  the bottleneck block, sigma = sqrt(1e-5) ~= 0.003 for every element. The noise is then the block's input,
  so the bottleneck decides, token by token and feature by feature, whether the block's update is let
  through. On our held-out degradation tests this estimator's heatmaps were no more faithful than random
  token order (docs: evaluations), hence not the default.
Output: ``scores`` [token]; with ``sweep`` also ``layers`` [layer, token] (one optimisation per block).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from app.data import SAMPLE_CORPUS
from app.errors import InvalidInput
from app.methods.attribution.common import AttributionMethod
from app.modeling.encoding import Encoded
from app.modeling.loading import LoadedModel
from app.modeling.targets import BoundTarget

SENTENCE_SIGMA = 1e-5**0.5  # the published estimator's std after a single sample (sqrt of its eps)
DATASET_MIN_SIGMA = 0.01
STATISTICS_MAX_TOKENS = 128  # corpus sentences are truncated here (or at the model's positions)


ESTIMATOR_NOTES = {
    "dataset": "bottleneck after block {layer}; μ, σ: dataset estimator (per feature over the sample "
    "corpus, Schulz et al.)",
    "sentence": "bottleneck after block {layer}; μ, σ: per-sentence estimator of the released IBA BERT code",
}


class IbaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    layer: int | None = Field(
        None,
        ge=0,
        title="Bottleneck after block",
        description="Block after which the bottleneck sits (default: 8 of 12, scaled by depth).",
    )
    beta: float = Field(
        1e-5, ge=0, le=10, title="β", description="Weight of the information (capacity) term."
    )
    steps: int = Field(10, ge=1, le=200, title="Steps", description="Adam steps on alpha.")
    lr: float = Field(1.0, gt=0, le=100, title="Learning rate", description="Adam learning rate.")
    samples: int = Field(
        10, ge=1, le=256, title="Noise samples", description="Noise samples per step (one batch)."
    )
    alpha_init: float = Field(
        5.0, ge=-20, le=20, title="Initial α", description="Initial mask logit (0.993 kept)."
    )
    estimator: Literal["dataset", "sentence"] = Field(
        "dataset",
        title="μ, σ estimator",
        description="dataset: per-feature mean and std over the sample corpus (Schulz et al.); "
        "sentence: the per-sentence estimator of the released IBA BERT code.",
    )
    sweep: bool = Field(
        False, title="Sweep all blocks", description="Also run the bottleneck after every block."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, title="Seed", description="Seed of the noise.")


class Injector(nn.Module):
    """Stands in for the blocks below the bottleneck: returns the bottleneck output Z, whatever it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.value: torch.Tensor | None = None

    def forward(self, hidden_states: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return self.value


def default_layer(layers: int) -> int:
    """The published layer index 8 of 12 blocks, scaled to this depth."""
    return min(layers - 1, max(0, round(8 * layers / 12)))


class InformationBottleneck(AttributionMethod):
    """Information Bottleneck Attribution after one encoder block, optionally swept over all blocks."""

    name: ClassVar[str] = "iba"
    title: ClassVar[str] = "Information Bottleneck Attribution"
    citation: ClassVar[str] = "Jiang, Tang, Xin & Lin, Findings of EMNLP 2020"
    summary: ClassVar[str] = (
        "Which tokens the prediction still needs when a noise bottleneck after one block lets as "
        "little information through as it can."
    )
    Params: ClassVar[type[BaseModel]] = IbaParams
    signed: ClassVar[bool] = False

    def passes(self, params: IbaParams, tokens: int, layers: int) -> float:
        """Per bottleneck: one forward and backward pass of a batch of noise samples through the blocks
        above it, per step (about 0.3 of a full pass per sample, measured on 6 blocks); all blocks when
        swept."""
        return 1.0 + 0.3 * params.steps * params.samples * (layers if params.sweep else 1)

    def attribute(
        self, loaded: LoadedModel, encoded: Encoded, params: IbaParams, target: BoundTarget
    ) -> tuple[torch.Tensor, dict]:
        layers = loaded.num_layers
        layer = default_layer(layers) if params.layer is None else params.layer
        if layer >= layers:
            raise InvalidInput(f"params.layer must be below {layers} (this model has {layers} blocks).")
        with torch.no_grad():
            hidden = loaded.adapter.encoder(loaded.model)(**encoded.model_inputs(), output_hidden_states=True)
            hidden = [state.detach() for state in hidden.hidden_states]
        positions = range(layers) if params.sweep else [layer]
        capacities = {
            position: bottleneck_capacity(loaded, encoded, target, hidden, position, params)
            for position in positions
        }
        extra: dict = {"computed_with": ESTIMATOR_NOTES[params.estimator].format(layer=layer)}
        if params.sweep:
            extra["layers"] = torch.stack([capacities[p] for p in positions])
        return capacities[layer], extra


def bottleneck_capacity(
    loaded: LoadedModel,
    encoded: Encoded,
    target: BoundTarget,
    hidden: list[torch.Tensor],
    layer: int,
    params: IbaParams,
) -> torch.Tensor:
    """Capacity per token [token] of a bottleneck optimised after block ``layer``."""
    signal = hidden[layer + 1]  # [1, token, hidden]: output of block `layer`
    if params.estimator == "sentence":
        mean, std = hidden[layer], torch.full_like(signal, SENTENCE_SIGMA)
    else:
        mean, std = dataset_statistics(loaded, layer + 1)
    normalised = (signal - mean) / std
    alpha = torch.full_like(signal, params.alpha_init).requires_grad_(True)
    optimiser = torch.optim.Adam([alpha], lr=params.lr)
    generator = torch.Generator(device=signal.device).manual_seed(params.seed)
    injector = Injector()
    blocks = [loaded.adapter.block(loaded.model, i) for i in range(layer + 1, loaded.num_layers)]
    batch = {name: t.expand(params.samples, *t.shape[1:]) for name, t in encoded.model_inputs().items()}
    labels = torch.full((params.samples,), target.index, device=signal.device)
    with loaded.adapter.blocks_replaced(loaded.model, [injector, *blocks]), torch.enable_grad():
        for _ in range(params.steps):
            keep = torch.sigmoid(alpha)
            log_var = -2.0 * F.softplus(alpha)  # log (1 - sigmoid(alpha))^2, stable for large alpha
            mu = keep * normalised
            capacity = -0.5 * (1.0 + log_var - mu**2 - log_var.exp())  # KL to N(0, 1), per element
            noise = torch.randn(
                (params.samples, *signal.shape[1:]), generator=generator, device=signal.device
            )
            injector.value = (mu + torch.exp(0.5 * log_var.clamp(-10, 10)) * noise) * std + mean
            loss = F.cross_entropy(target.logits(**batch), labels) + params.beta * capacity.mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return capacity.detach()[0].sum(dim=-1)


_STATISTICS: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # weights revision -> (mean, std)
STATISTICS_VERSION = 1  # part of the cache file name: bump when the corpus or the computation changes


def dataset_statistics(loaded: LoadedModel, hidden_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std [hidden] of hidden state ``hidden_index`` over the sample corpus tokens."""
    if loaded.revision not in _STATISTICS:
        _STATISTICS[loaded.revision] = _cached_statistics(loaded)
    means, stds = _STATISTICS[loaded.revision]
    return means[hidden_index].to(loaded.device), stds[hidden_index].to(loaded.device)


def statistics_file(loaded: LoadedModel) -> Path | None:
    """Where the dataset statistics of these weights are cached on disk (None: no cache directory)."""
    if loaded.cache_dir is None:
        return None
    return Path(loaded.cache_dir) / "iba" / f"statistics-v{STATISTICS_VERSION}-{loaded.revision}.npz"


def _cached_statistics(loaded: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    path = statistics_file(loaded)
    if path is not None and path.is_file():
        try:
            with np.load(path) as stored:
                return torch.from_numpy(stored["mean"]), torch.from_numpy(stored["std"])
        except (OSError, ValueError, KeyError):
            pass  # unreadable (e.g. a foreign file): recompute and overwrite
    mean, std = _corpus_statistics(loaded)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
        np.savez(partial, mean=mean.numpy(), std=std.numpy())
        os.replace(partial, path)  # atomic: a reader sees the old file or the whole new one
    return mean, std


def _corpus_statistics(loaded: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    sentences = [line for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    total, squares, count = None, None, 0
    with torch.no_grad():
        for start in range(0, len(sentences), 32):
            batch = loaded.tokenizer(
                sentences[start : start + 32],
                padding=True,
                truncation=True,
                max_length=min(STATISTICS_MAX_TOKENS, loaded.max_positions),
                return_tensors="pt",
            ).to(loaded.device)
            if not loaded.uses_token_types:
                batch.pop("token_type_ids", None)
            states = torch.stack(
                loaded.adapter.encoder(loaded.model)(**batch, output_hidden_states=True).hidden_states
            ).double()  # [layer, batch, token, hidden]
            mask = batch["attention_mask"].bool()
            tokens = states[:, mask]  # [layer, tokens, hidden]
            total = tokens.sum(1) if total is None else total + tokens.sum(1)
            squares = (tokens**2).sum(1) if squares is None else squares + (tokens**2).sum(1)
            count += tokens.shape[1]
    mean = total / count
    std = torch.sqrt((squares / count - mean**2).clamp_min(0)).clamp_min(DATASET_MIN_SIGMA)
    return mean.float().cpu(), std.float().cpu()
