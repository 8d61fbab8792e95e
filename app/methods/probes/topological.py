"""Tree topological probe: self-supervised bounds on the structural depth probe's loss.

Li, Yin & Lin, "Rethinking the Construction of Effective Metrics for Understanding the Mechanisms of
Pretrained Language Models", EMNLP 2023 (https://aclanthology.org/2023.emnlp-main.811; code:
github.com/cclx/Effective_Metrics). A depth probe pred_i = ||B h_i||^2 is trained three ways and its held-out
mean squared error reported per layer:

- SP (supervised): to the gold depths (root = 1);
- SSP (self-supervised): to pseudo-depths built from the probe's own predictions at every step by the
  operator below, the best-fitting valid depth profile of a tree (X_ssp, the lower metric);
- ESSP: to the same pseudo-depths assigned in position-reversed order (the word predicted shallowest gets
  the deepest label), meant as the worst pairing of those labels (X_essp, the paper's upper metric; our
  reading of "position-reversed", see below).

The pseudo-label operator sorts the predictions x ascending; the first gets depth 1, the second depth 2
(a tree has one root), and each next word the nearer of "same as the previous label" or "previous + 1"
(an exact tie goes to + 1). Labels carry no gradient. Losses are masked means over words (padding and
special tokens never enter: word vectors are subword means, and padded positions are masked).

Why the curves were unstable, and the fix. Measured on the embedded model (all-MiniLM-L6-v2), trained on the
EWT train subset (4,276 sentences), held-out losses on the full EWT dev set, seeds 0-2, 10 epochs. The
probes were trained with Adam at a constant learning rate of 1e-3 and read after the last step. Mean squared
error on a squared norm is quartic in B, and Adam at that constant rate sits at its edge of stability: the
loss settles for a few epochs, spikes, recovers slowly, and spikes again, for the supervised probe too. Over
3 seeds x 7 layers, the dev loss at an epoch's end exceeded twice its best so far 25 times for SP, 37 for
SSP and 43 for ESSP (largest: X_sp 376, X_ssp 117, X_essp 738); the values read at the end were whatever the
latest spike left (X_ssp at layer 5: 0.46, 0.11, 10.8 for seeds 0-2; X_sp at layer 6: 26.1, 3.7, 12.1),
hence X_ssp 75 at one layer beside 0.1-0.8 at its neighbours. SSP and ESSP suffer most because their labels
follow the predictions: a spike spreads the sorted predictions apart (30% of neighbouring gaps > 1 at a
spiked SSP layer against 4-6% at a settled one) and the labels can climb by only 1 per word, so the probe
chases displaced targets for epochs. Not the cause: the scale (the operator anchors it, as labels never
exceed a word's rank; settled SSP probes predict mean depths 2.56-3.40 for labels of mean 2.68-3.37),
padding and special tokens (word vectors are subword means; padded positions are masked and get label 0,
tested). The authors' released code (Measuring/train_{sp,ssp,essp}.py) decays the learning rate linearly to
zero (AdamW 2e-5, no warm-up, gradient norm clipped at 1; 10 epochs for SSP/ESSP, 300 for SP; rank hidden/2;
labels over all positions, padding and [CLS]/[SEP] included, SP labelling those 2), so their probes end
where the steps are small. Their rate needs their far larger corpus: on ours a constant 1e-4 had not
converged after 10 epochs (dev X_ssp 0.19-0.79, seed 0). We keep Adam at 1e-3 and decay it linearly to zero
over the run: 0 spikes in 3 x 7 x 3 probes, every probe ends within 0.3% of its best dev loss, and the
spread over seeds falls from up to 11.3 (X_sp, layer 6) to at most 0.21. A 5-epoch schedule ends measurably
higher (X_sp 4.45 vs 3.84 at layer 6, X_essp 0.56 vs 0.27 at layer 0, beyond the spread), so 10 epochs stay.

What remains is measured, not tuned: X_ssp (0.11-0.43) < X_sp (0.71-3.84) at every layer, but X_essp
(0.15-1.15) < X_sp too, so the bracket is violated at all 7 layers. Under this reading of ESSP the probe
lowers its loss by flattening its profile (within-sentence spread of predictions 0.12-0.16 at layers 0-5
against 0.86-1.03 for SSP; 91% of its labels equal 2): reversed labels of a flat profile are almost the
labels themselves. (The authors' ESSP label code is not in the stored copy of their repository; their
Fine-tuning copy of constructLabel.py holds only the SSP operator, identical to ours.)

All (mode, seed, layer) probes train in one batched computation: the three modes share each batch, so one
matrix product per layer serves them all; each seed has its own initialisation and its own batch order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from app.methods.probes.batches import ProbeBatch
from app.methods.probes.probe_maps import INIT_RANGE

TTP_RANK = 128
TTP_LEARNING_RATE = 1e-3  # decayed linearly to 0 over the run (the authors' schedule)
TTP_EPOCHS = 10
TTP_SEEDS = 3
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


def bracket_verdict(ssp: tuple[float, float], sp: tuple[float, float], essp: tuple[float, float]) -> str:
    """One layer's bracket X_ssp <= X_sp <= X_essp judged with the spread; each argument is (mean, std).

    Each value stands for its interval [mean - std, mean + std]. "holds": every pair is ordered beyond the
    spread (the smaller one's upper end <= the larger one's lower end); "violated": some pair (of the three,
    X_ssp <= X_essp included) is ordered the wrong way beyond the spread; "undecided" otherwise. With one
    seed (std 0) this is the plain comparison of the means.
    """
    pairs = [(ssp, sp), (sp, essp), (ssp, essp)]  # (should be smaller, should be larger)
    if any(low[0] - low[1] > high[0] + high[1] for low, high in pairs):
        return "violated"
    if all(low[0] + low[1] <= high[0] - high[1] for low, high in pairs):
        return "holds"
    return "undecided"


@dataclass
class TopologicalCurves:
    """Held-out losses X_sp, X_ssp, X_essp per seed and layer (``per_seed[mode]``: [seed][layer])."""

    layers: list[int]
    seeds: list[int]
    per_seed: dict[str, list[list[float]]]

    def mean(self, mode: str) -> list[float]:
        return np.mean(np.asarray(self.per_seed[mode], dtype=np.float64), axis=0).tolist()

    def std(self, mode: str) -> list[float]:
        """Sample standard deviation over seeds (ddof 1; 0.0 for a single seed)."""
        values = np.asarray(self.per_seed[mode], dtype=np.float64)
        if len(values) < 2:
            return [0.0] * len(self.layers)
        return np.std(values, axis=0, ddof=1).tolist()

    def bracket(self) -> list[str]:
        """Per layer: "holds" | "violated" | "undecided" (``bracket_verdict`` on mean and std)."""
        judged = {mode: list(zip(self.mean(mode), self.std(mode), strict=True)) for mode in MODES}
        order = ("ssp", "sp", "essp")
        return [bracket_verdict(*(judged[mode][i] for mode in order)) for i in range(len(self.layers))]

    def bracket_holds(self) -> list[bool]:
        """Per layer: X_ssp <= X_sp <= X_essp on the means (for readers of single-seed results)."""
        ssp, sp, essp = self.mean("ssp"), self.mean("sp"), self.mean("essp")
        return [a <= b <= c for a, b, c in zip(ssp, sp, essp, strict=True)]

    def to_dict(self) -> dict:
        result: dict = {"layers": list(self.layers), "seeds": list(self.seeds)}
        for mode in MODES:
            result[f"x_{mode}"] = self.mean(mode)
            result[f"x_{mode}_std"] = self.std(mode)
        result["per_seed"] = {f"x_{mode}": self.per_seed[mode] for mode in MODES}
        result["bracket"] = self.bracket()
        result["bracket_holds"] = self.bracket_holds()
        return result


@dataclass
class TopologicalProbes:
    """Trained SP/SSP/ESSP depth probes: ``maps[mode]`` is [seed, layer, rank, hidden] (float32);
    ``history["train_loss"]`` the mean training loss of each epoch, [epoch][mode][seed][layer]."""

    layers: list[int]
    seeds: list[int]
    maps: dict[str, np.ndarray]
    history: dict = field(default_factory=dict)

    def curves(self, batches: Sequence[ProbeBatch]) -> TopologicalCurves:
        """X_sp, X_ssp, X_essp of every seed and layer on ``batches`` (any treebank with these layers)."""
        maps = torch.from_numpy(np.stack([self.maps[mode] for mode in MODES]))  # [mode, seed, layer, r, h]
        losses = _held_out(batches, self.layers, maps).numpy()  # [mode, seed, layer]
        per_seed = {mode: losses[index].tolist() for index, mode in enumerate(MODES)}
        return TopologicalCurves(layers=list(self.layers), seeds=list(self.seeds), per_seed=per_seed)


def fit_topological_probes(
    train: Sequence[ProbeBatch],
    layers: list[int],
    hidden: int,
    *,
    rank: int = TTP_RANK,
    epochs: int = TTP_EPOCHS,
    seeds: Sequence[int] = tuple(range(TTP_SEEDS)),
    progress: Progress | None = None,
) -> TopologicalProbes:
    """SP, SSP and ESSP depth probes for every layer and seed, trained together.

    Adam, learning rate ``TTP_LEARNING_RATE`` decayed linearly to 0 over ``epochs`` passes. Each seed has
    its own initialisation (uniform in +-INIT_RANGE, shared by its three modes) and its own batch order.
    ``progress(step, steps)`` is called after every step (it may raise to cancel).
    """
    seeds = list(seeds)
    # per seed one leaf [layer, hidden, mode * rank]: the layout of the batched product, so no step copies it
    weights = [_to_columns(_initial_maps(seed, len(layers), rank, hidden)).requires_grad_() for seed in seeds]
    optimiser = torch.optim.Adam(weights, lr=TTP_LEARNING_RATE)  # elementwise: every probe on its own
    steps, done = epochs * len(train), 0
    history: dict[str, list] = {"train_loss": []}
    for epoch in range(epochs):
        orders = [_batch_order(len(train), seed, epoch) for seed in seeds]
        total = torch.zeros(len(MODES), len(seeds), len(layers))
        for position in range(len(train)):
            optimiser.param_groups[0]["lr"] = learning_rate(done, steps)
            optimiser.zero_grad()
            batches = [train[order[position]] for order in orders]
            losses = torch.stack(
                [_losses(batch, layers, w) for batch, w in zip(batches, weights, strict=True)], 1
            )  # [mode, seed, layer]
            losses.sum().backward()
            optimiser.step()
            total += losses.detach()
            done += 1
            if progress:
                progress(done, steps)
        history["train_loss"].append((total / max(len(train), 1)).tolist())
    maps = torch.stack([_from_columns(w.detach(), rank) for w in weights], 1).numpy()  # [mode, seed, ...]
    return TopologicalProbes(
        layers=list(layers),
        seeds=seeds,
        maps={mode: maps[index].copy() for index, mode in enumerate(MODES)},
        history=history,
    )


def train_topological_probes(
    train: Sequence[ProbeBatch],
    dev: Sequence[ProbeBatch],
    layers: list[int],
    hidden: int,
    *,
    rank: int = TTP_RANK,
    epochs: int = TTP_EPOCHS,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> TopologicalCurves:
    """Train (``fit_topological_probes``) and measure on ``dev``; ``seeds`` default: ``seed`` and the next
    ``TTP_SEEDS - 1``."""
    chosen = list(seeds) if seeds is not None else [seed + offset for offset in range(TTP_SEEDS)]
    probes = fit_topological_probes(
        train, layers, hidden, rank=rank, epochs=epochs, seeds=chosen, progress=progress
    )
    return probes.curves(dev)


def learning_rate(step: int, steps: int) -> float:
    """The rate of (0-based) step ``step`` of ``steps``: ``TTP_LEARNING_RATE`` decayed linearly towards 0,
    as in the authors' schedule (linear, no warm-up), so the probes end where Adam's steps are small."""
    return TTP_LEARNING_RATE * (1 - step / max(steps, 1))


def _initial_maps(seed: int, count: int, rank: int, hidden: int) -> torch.Tensor:
    """[mode, layer, rank, hidden]: uniform in +-INIT_RANGE from ``seed``, the same for the three modes (they
    differ only in their labels)."""
    generator = torch.Generator().manual_seed(seed)
    maps = (torch.rand(count, rank, hidden, generator=generator) * 2 - 1) * INIT_RANGE
    return maps.unsqueeze(0).repeat(len(MODES), 1, 1, 1)


def _to_columns(maps: torch.Tensor) -> torch.Tensor:
    """[mode, layer, rank, hidden] -> [layer, hidden, mode * rank] (contiguous)."""
    modes, count, rank, hidden = maps.shape
    return maps.permute(1, 3, 0, 2).reshape(count, hidden, modes * rank).contiguous()


def _from_columns(columns: torch.Tensor, rank: int) -> torch.Tensor:
    """[layer, hidden, mode * rank] -> [mode, layer, rank, hidden]."""
    count, hidden, width = columns.shape
    return columns.reshape(count, hidden, width // rank, rank).permute(2, 0, 3, 1).contiguous()


def _batch_order(count: int, seed: int, epoch: int) -> list[int]:
    """A seeded permutation per (seed, epoch), each from its own stream: no seed replays another's order
    (the old ``seed + epoch`` made seed 1's first epoch seed 0's second)."""
    return np.random.default_rng([seed, epoch]).permutation(count).tolist()


def _predictions(batch: ProbeBatch, layers: list[int], columns: torch.Tensor) -> torch.Tensor:
    """Vectors [layer, sentence, word, hidden] x maps [layer, hidden, mode * rank] -> [mode, layer, sentence,
    word]: one matrix product per layer serves every mode (they share the batch)."""
    first = layers[0]
    consecutive = layers == list(range(first, first + len(layers)))
    # a slice is a view: only the float conversion copies (an index list would copy the float16 too)
    vectors = (batch.vectors[first : first + len(layers)] if consecutive else batch.vectors[layers]).float()
    count, sentences, words, hidden = vectors.shape
    flat = vectors.reshape(count, sentences * words, hidden)
    squared = _SquaredNorms.apply(flat, columns, len(MODES))  # [layer, sentence * word, mode]
    return squared.reshape(count, sentences, words, len(MODES)).permute(3, 0, 1, 2)


class _SquaredNorms(torch.autograd.Function):
    """pred[l, n, m] = sum_r (X_l W_l)[n, m * rank + r]^2 with the gradient for W only, written out: one
    product forward, one elementwise product and one product backward (autograd's square and sum would
    add three passes over the [layer, word, mode * rank] projection, the largest tensor of a step)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, vectors: torch.Tensor, columns: torch.Tensor, modes: int
    ) -> torch.Tensor:
        projected = torch.bmm(vectors, columns)  # [layer, word, mode * rank]
        ctx.save_for_backward(vectors, projected)
        ctx.modes = modes
        count, words, width = projected.shape
        return projected.view(count, words, modes, width // modes).square().sum(-1)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[None, torch.Tensor, None]:
        vectors, projected = ctx.saved_tensors
        count, words, width = projected.shape
        modes = ctx.modes
        # d pred / d projected = 2 projected, scaled by the upstream gradient of its (word, mode)
        scaled = projected.view(count, words, modes, width // modes) * (2 * grad).unsqueeze(-1)
        return None, torch.bmm(vectors.transpose(1, 2), scaled.view(count, words, width)), None


def _targets(predicted: torch.Tensor, batch: ProbeBatch) -> torch.Tensor:
    """Labels [mode, layer, sentence, word] of SP (gold, root 1), SSP and ESSP (from the predictions)."""
    mask = batch.mask.expand_as(predicted[0])
    gold = (batch.depths + 1).expand_as(predicted[0])
    ssp = pseudo_depths(predicted[1], mask)
    essp = pseudo_depths(predicted[2], mask, reverse=True)
    return torch.stack([gold, ssp, essp])


def _losses(batch: ProbeBatch, layers: list[int], columns: torch.Tensor) -> torch.Tensor:
    """Masked mean squared error per mode and layer [mode, layer] on one batch."""
    predicted = _predictions(batch, layers, columns)
    error = (predicted - _targets(predicted, batch)).square() * batch.mask
    return error.sum((-1, -2)) / batch.mask.sum()


@torch.no_grad()
def _held_out(batches: Sequence[ProbeBatch], layers: list[int], maps: torch.Tensor) -> torch.Tensor:
    """Word-weighted mean squared error [mode, seed, layer]; maps [mode, seed, layer, rank, hidden]."""
    columns = [_to_columns(maps[:, k]) for k in range(maps.shape[1])]
    total = torch.zeros(maps.shape[:3], dtype=torch.float64)
    words = 0
    for batch in batches:
        count = int(batch.mask.sum())
        total += torch.stack([_losses(batch, layers, c) for c in columns], 1).double() * count
        words += count
    return (total / max(words, 1)).float()
