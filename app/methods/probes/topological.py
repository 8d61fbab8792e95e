"""Tree topological probe: self-supervised bounds on the structural depth probe's loss.

Li, Yin & Lin, "Rethinking the Construction of Effective Metrics for Understanding the Mechanisms of
Pretrained Language Models", EMNLP 2023 (https://aclanthology.org/2023.emnlp-main.811). A depth probe
pred_i = ||B h_i||^2 is trained three ways and its held-out loss reported per layer:

- SP (supervised): mean squared error to the gold depths (root = 1);
- SSP (self-supervised): to pseudo-depths built from the probe's own predictions at every step by the
  operator below, which yields the best-fitting valid depth profile of a tree (X_ssp, the lower metric);
- ESSP: to the same pseudo-depths assigned in position-reversed order (the word predicted shallowest gets
  the deepest label), the worst pairing of those labels (X_essp, the upper metric).

The pseudo-label operator sorts the predictions x ascending; the first gets depth 1, the second depth 2
(a tree has one root), and each next word the nearer of "same as the previous label" or "previous + 1"
(an exact tie goes to + 1). Labels carry no gradient. Losses are masked means over words (padding and
special tokens excluded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from app.methods.probes.batches import ProbeBatch, shuffled
from app.methods.probes.probe_maps import INIT_RANGE

TTP_RANK = 128
TTP_LEARNING_RATE = 1e-3
TTP_EPOCHS = 10
MODES = ("sp", "ssp", "essp")
Progress = Callable[[int, int], None]


def pseudo_depths(predicted: torch.Tensor, mask: torch.Tensor, *, reverse: bool = False) -> torch.Tensor:
    """The operator on a batch [..., word] at once (no Python loop over words or sentences).

    With g_j = max(2, round-half-up(x_j)) over the sorted predictions, the loop's recurrence is
    L_j = min(L_{j-1} + 1, max(L_{j-1}, g_j)) for j >= 3 (L_1 = 1, L_2 = 2). g is non-decreasing and
    L_{j-1} <= g_j by induction, so L_j = min(L_{j-1} + 1, g_j), whose closed form is a running minimum:
    L_j = min(j, j + min_{3<=k<=j}(g_k - k)).
    ``reverse`` gives ESSP's position-reversed assignment. Masked positions get 0.
    """
    x = predicted.detach().masked_fill(~mask, float("inf"))
    sorted_x, order = torch.sort(x, dim=-1, stable=True)
    count = mask.sum(-1, keepdim=True)
    rank = torch.arange(1, x.shape[-1] + 1, device=x.device).expand_as(x)  # 1-based j
    floor_two = torch.floor(sorted_x + 0.5).clamp(min=2.0, max=1e6)  # g_j
    slack = torch.where(rank >= 3, floor_two - rank, torch.full_like(floor_two, float("inf")))
    labels = torch.minimum(rank.to(x.dtype), torch.cummin(slack, dim=-1).values + rank)
    valid = rank <= count
    if reverse:
        flipped_index = (count - rank).clamp(min=0)  # position j takes the label of position n + 1 - j
        labels = torch.where(valid, labels.gather(-1, flipped_index), labels)
    labels = torch.where(valid, labels, torch.zeros_like(labels))
    return torch.zeros_like(x).scatter(-1, order, labels)


@dataclass
class TopologicalCurves:
    """Held-out losses per layer of the three probes: X_sp, X_ssp, X_essp."""

    layers: list[int]
    sp: list[float]
    ssp: list[float]
    essp: list[float]

    def bracket_holds(self) -> list[bool]:
        """Per layer: X_ssp <= X_sp <= X_essp."""
        return [a <= b <= c for a, b, c in zip(self.ssp, self.sp, self.essp, strict=True)]

    def to_dict(self) -> dict:
        return {
            "layers": self.layers,
            "x_sp": self.sp,
            "x_ssp": self.ssp,
            "x_essp": self.essp,
            "bracket_holds": self.bracket_holds(),
        }


def _targets(mode: str, predicted: torch.Tensor, batch: ProbeBatch) -> torch.Tensor:
    mask = batch.mask.expand_as(predicted)
    if mode == "sp":
        return (batch.depths + 1).expand_as(predicted)  # root depth 1, as for the pseudo-labels
    return pseudo_depths(predicted, mask, reverse=mode == "essp")


def _losses(mode: str, batch: ProbeBatch, layers: list[int], maps: torch.Tensor) -> torch.Tensor:
    """Masked mean squared error per layer [layer]."""
    vectors = batch.layer_vectors(layers)
    predicted = (torch.einsum("lswh,lrh->lswr", vectors, maps) ** 2).sum(-1)  # [layer, sentence, word]
    error = (predicted - _targets(mode, predicted, batch)) ** 2 * batch.mask
    return error.sum((-1, -2)) / batch.mask.sum()


def train_topological_probes(
    train: list[ProbeBatch],
    dev: list[ProbeBatch],
    layers: list[int],
    hidden: int,
    *,
    rank: int = TTP_RANK,
    epochs: int = TTP_EPOCHS,
    seed: int = 0,
    progress: Progress | None = None,
) -> TopologicalCurves:
    """Train SP, SSP and ESSP depth probes for every layer; report their held-out losses."""
    curves: dict[str, list[float]] = {}
    steps = len(MODES) * epochs * len(train)
    for number, mode in enumerate(MODES):
        generator = torch.Generator().manual_seed(seed)
        maps = (
            (torch.rand(len(layers), rank, hidden, generator=generator) * 2 - 1) * INIT_RANGE
        ).requires_grad_()
        optimiser = torch.optim.Adam([maps], lr=TTP_LEARNING_RATE)
        for epoch in range(epochs):
            for step, batch in enumerate(shuffled(train, seed + epoch)):
                optimiser.zero_grad()
                _losses(mode, batch, layers, maps).sum().backward()
                optimiser.step()
                if progress:
                    progress((number * epochs + epoch) * len(train) + step + 1, steps)
        curves[mode] = _held_out(mode, dev, layers, maps.detach()).tolist()
    return TopologicalCurves(layers=list(layers), sp=curves["sp"], ssp=curves["ssp"], essp=curves["essp"])


@torch.no_grad()
def _held_out(mode: str, dev: list[ProbeBatch], layers: list[int], maps: torch.Tensor) -> np.ndarray:
    """Word-weighted mean squared error per layer over the held-out batches."""
    total = torch.zeros(len(layers))
    words = 0
    for batch in dev:
        count = int(batch.mask.sum())
        total += _losses(mode, batch, layers, maps) * count
        words += count
    return (total / max(words, 1)).numpy()
