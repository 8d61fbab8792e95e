"""TopK sparse autoencoders (Gao et al., "Scaling and evaluating sparse autoencoders", arXiv 2406.04093).

A dictionary of ``width`` latents for ``d``-dimensional activations x (one layer of the encoder, at one site):

    z = ReLU(TopK_k(W_enc (x' - b_pre) + b_enc))      x' = x / scale (so that E||x'||^2 = d)
    x_hat = scale * (W_dec z + b_pre)

The variant, as the paper's: the k largest pre-activations are kept (the others set to 0) and then ReLU'd;
the decoder's rows (latent directions) are kept at unit norm (the gradient's component along each row is
removed before the step and the rows renormalised after it); the encoder starts as the decoder's transpose,
b_pre at the data's coordinate-wise median; the loss is the reconstruction MSE normalised by the data's
variance (so that 1.0 is "predict the mean"), plus the AuxK loss that revives dead latents: the residual
x' - x_hat' is reconstructed from the ``aux_k`` largest pre-activations of the latents that have not fired
in the last ``dead_after`` tokens, weighted 1/32. The paper's initialisation of b_pre is the geometric
median; we use the coordinate-wise median (no iterative solve), and a constant learning rate with Adam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from app.errors import InvalidInput

AUX_COEFFICIENT = 1 / 32  # the paper's alpha
Progress = Callable[[int, int], None]


@dataclass
class SaeOptions:
    """How to train: width (latents), k (active latents per token), steps, batch, learning rate, seed."""

    width: int
    k: int
    steps: int = 2000
    batch_size: int = 1024
    learning_rate: float = 1e-3
    aux_k: int | None = None  # default: d / 2, capped by the width
    dead_after: int = 50_000  # tokens without firing after which a latent counts as dead (AuxK revives it)
    seed: int = 0


class TopKSae(nn.Module):
    """The autoencoder's weights and its forward pass (``encode`` / ``decode`` work on unscaled x)."""

    def __init__(
        self, dimension: int, width: int, k: int, scale: float = 1.0, generator: torch.Generator | None = None
    ):
        super().__init__()
        if not 1 <= k <= width:
            raise InvalidInput(f"k must be between 1 and the width {width} (got {k}).")
        decoder = torch.randn(width, dimension, generator=generator)
        decoder /= decoder.norm(dim=1, keepdim=True)
        self.decoder = nn.Parameter(decoder)  # [latent, d] unit rows
        self.encoder = nn.Parameter(decoder.T.clone())  # [d, latent]
        self.encoder_bias = nn.Parameter(torch.zeros(width))
        self.pre_bias = nn.Parameter(torch.zeros(dimension))
        self.k = k
        self.register_buffer("scale", torch.tensor(float(scale)))

    @property
    def width(self) -> int:
        return int(self.decoder.shape[0])

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """[token, latent] before TopK, for unscaled x [token, d]."""
        return (x / self.scale - self.pre_bias) @ self.encoder + self.encoder_bias

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Sparse codes z [token, latent]: the k largest pre-activations, ReLU'd, the rest 0."""
        return _top_k(self.pre_activations(x), self.k)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction [token, d] in the activations' own scale."""
        return (z @ self.decoder + self.pre_bias) * self.scale

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.decoder /= self.decoder.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_gradient(self) -> None:
        """Remove each decoder row's gradient component along the row (it must stay unit norm)."""
        if self.decoder.grad is not None:
            along = (self.decoder.grad * self.decoder).sum(dim=1, keepdim=True)
            self.decoder.grad -= along * self.decoder


def _top_k(pre: torch.Tensor, k: int) -> torch.Tensor:
    values, indices = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, indices, values.relu())


@dataclass
class SaeMetrics:
    """Held-out quality: fraction of variance unexplained, mean active latents, dead latents."""

    fvu: float
    l0: float
    dead_in_training: int  # latents that had not fired in the last ``dead_after`` training tokens
    never_active_heldout: int  # latents that never fired on the held-out tokens
    tokens_seen: int
    heldout_tokens: int
    loss_curve: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "fvu": self.fvu,
            "l0": self.l0,
            "dead_in_training": self.dead_in_training,
            "never_active_heldout": self.never_active_heldout,
            "tokens_seen": self.tokens_seen,
            "heldout_tokens": self.heldout_tokens,
            "loss_curve": self.loss_curve,
        }


@dataclass
class TrainingState:
    """Everything a stopped training needs to resume to the uninterrupted result."""

    sae: TopKSae
    optimizer: torch.optim.Optimizer
    step: int = 0
    tokens_seen: int = 0
    since_fired: torch.Tensor | None = None  # [latent] tokens since each latent last fired
    generator_state: torch.Tensor | None = None
    losses: list[float] = field(default_factory=list)


def start_training(sample: torch.Tensor, options: SaeOptions) -> TrainingState:
    """A fresh autoencoder for activations like ``sample`` [token, d] (scale and b_pre from it)."""
    if sample.ndim != 2 or sample.shape[0] < 2:
        raise InvalidInput("Training a dictionary needs at least two activation vectors.")
    generator = torch.Generator().manual_seed(options.seed)
    dimension = sample.shape[1]
    scale = float(sample.float().pow(2).sum(dim=1).mean().sqrt() / dimension**0.5)
    sae = TopKSae(dimension, options.width, options.k, scale or 1.0, generator)
    with torch.no_grad():
        sae.pre_bias.copy_((sample.float() / sae.scale).median(dim=0).values)
    optimizer = torch.optim.Adam(sae.parameters(), lr=options.learning_rate)
    return TrainingState(
        sae,
        optimizer,
        since_fired=torch.zeros(options.width, dtype=torch.int64),
        generator_state=generator.get_state(),
    )


def train_sae(
    state: TrainingState,
    batches: Iterable[torch.Tensor],
    options: SaeOptions,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None,
    checkpoint_every: int = 200,
) -> TrainingState:
    """Run steps on ``batches`` ([token, d] float32 minibatches, already shuffled) until ``options.steps``
    (counting the steps of a resumed ``state``), or until ``should_stop()``."""
    sae, optimizer = state.sae, state.optimizer
    aux_k = min(options.aux_k or max(1, sae.decoder.shape[1] // 2), sae.width)
    for batch in batches:
        if state.step >= options.steps or (should_stop is not None and should_stop()):
            break
        loss = _step(sae, optimizer, batch.float(), state, options.dead_after, aux_k)
        state.step += 1
        state.tokens_seen += int(batch.shape[0])
        if state.step % 50 == 0 or state.step == options.steps:
            state.losses.append(round(loss, 6))
        if progress is not None:
            progress(state.step, options.steps)
        if checkpoint is not None and state.step % checkpoint_every == 0 and state.step < options.steps:
            checkpoint(state)
    return state


def _step(
    sae: TopKSae,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    state: TrainingState,
    dead_after: int,
    aux_k: int,
) -> float:
    scaled = x / sae.scale
    pre = sae.pre_activations(x)
    z = _top_k(pre, sae.k)
    reconstruction = z @ sae.decoder + sae.pre_bias
    variance = (scaled - scaled.mean(dim=0)).pow(2).sum().clamp_min(1e-12)
    residual = scaled - reconstruction
    loss = residual.pow(2).sum() / variance
    fired = (z > 0).any(dim=0)
    state.since_fired = torch.where(fired, 0, state.since_fired + x.shape[0])
    dead = state.since_fired > dead_after
    if bool(dead.any()):
        dead_pre = pre.masked_fill(~dead, float("-inf"))
        count = min(aux_k, int(dead.sum()))
        aux = _top_k(dead_pre, count).nan_to_num(0.0)
        aux_reconstruction = aux @ sae.decoder
        error = residual.detach()
        aux_loss = (error - aux_reconstruction).pow(2).sum() / error.pow(2).sum().clamp_min(1e-12)
        loss = loss + AUX_COEFFICIENT * aux_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    sae.project_decoder_gradient()
    optimizer.step()
    sae.normalise_decoder()
    return float(loss.detach())


@torch.no_grad()
def evaluate_sae(sae: TopKSae, heldout: torch.Tensor, state: TrainingState, dead_after: int) -> SaeMetrics:
    """FVU, L0 and dead latents of ``sae`` on held-out activations [token, d]."""
    total_error, active, fired = 0.0, 0.0, torch.zeros(sae.width, dtype=torch.bool)
    for start in range(0, heldout.shape[0], 4096):
        x = heldout[start : start + 4096].float()
        z = sae.encode(x)
        total_error += float((x - sae.decode(z)).pow(2).sum())
        active += float((z > 0).sum())
        fired |= (z > 0).any(dim=0)
    variance = float((heldout.float() - heldout.float().mean(dim=0)).pow(2).sum())
    since = state.since_fired if state.since_fired is not None else torch.zeros(sae.width, dtype=torch.int64)
    return SaeMetrics(
        fvu=total_error / max(variance, 1e-12),
        l0=active / max(heldout.shape[0], 1),
        dead_in_training=int((since > dead_after).sum()),
        never_active_heldout=int((~fired).sum()),
        tokens_seen=state.tokens_seen,
        heldout_tokens=int(heldout.shape[0]),
        loss_curve=list(state.losses),
    )


def shuffled_minibatches(
    chunks: Iterable[torch.Tensor], batch_size: int, seed: int, buffer_tokens: int = 65_536
) -> Iterator[torch.Tensor]:
    """Minibatches from a stream of [token, d] chunks through a shuffle buffer of ``buffer_tokens``: no need
    to hold every activation, and neighbouring tokens of one sentence land in different minibatches."""
    generator = torch.Generator().manual_seed(seed)
    buffer: list[torch.Tensor] = []
    held = 0
    for chunk in chunks:
        buffer.append(chunk)
        held += chunk.shape[0]
        if held >= buffer_tokens:
            yield from _drain(torch.cat(buffer), batch_size, generator, keep=buffer_tokens // 2, out=buffer)
            held = buffer[0].shape[0] if buffer else 0
    if buffer:
        yield from _drain(torch.cat(buffer), batch_size, generator, keep=0, out=buffer)


def _drain(
    tokens: torch.Tensor, batch_size: int, generator: torch.Generator, keep: int, out: list[torch.Tensor]
) -> Iterator[torch.Tensor]:
    """Shuffle ``tokens``, yield whole minibatches until ``keep`` are left, leave those in ``out``."""
    order = torch.randperm(tokens.shape[0], generator=generator)
    tokens = tokens[order]
    usable = max(0, (tokens.shape[0] - keep) // batch_size) * batch_size
    for start in range(0, usable, batch_size):
        yield tokens[start : start + batch_size]
    out.clear()
    rest = tokens[usable:]
    if keep == 0:
        if rest.shape[0]:
            yield rest
    elif rest.shape[0]:
        out.append(rest)
