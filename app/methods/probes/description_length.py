"""Description length of the depth probe per layer: the online code of an MDL probe.

Voita & Titov, "Information-Theoretic Probing with Minimum Description Length", EMNLP 2020
(https://aclanthology.org/2020.emnlp-main.14). The labels are transmitted block by block: the words are put
in a seeded order (sentences shuffled), cut at the paper's fractions 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25,
12.5, 25, 50 and 100 % of the data; the first block is sent with the uniform code (n_1 log2 K bits), and
every later block with the cross-entropy (bits) of a fresh probe trained on all the blocks before it.
The online codelength is the sum; compression = uniform codelength (n log2 K) / online codelength, so a
layer that makes depth easy to learn from few words compresses more, whatever probe rank one would pick.

Depth is classified: class d is gold depth d (edges from the root) for d < K - 1, the last class is
"K - 1 or deeper" (K = ``max_classes``, 8 by default); only the classes present in the data count, and the
uniform code and the probe's softmax use that number. The probe is a LINEAR softmax probe (the paper's
probe is an MLP; a linear one is cheaper and matches the structural probes' linear maps) on word vectors
standardised per layer and dimension over all words (the receiver has the vectors, only labels are sent).
Training as the paper's code: Adam (learning rate halved when the held-out loss stops improving by 1e-3
nats), early stopping after ``PATIENCE`` evaluations without improvement on a held-out 10% of the training
words, the best checkpoint kept. The probes of all layers train together (a layer dimension; their
gradients, learning rates and stopping are independent), so one layer alone gives the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from app.errors import InvalidInput
from app.methods.probes.features import WordFeatures
from app.methods.probes.treebank import tree_distances

PAPER_FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
MAX_CLASSES = 8
BATCH_WORDS = 256
LEARNING_RATE = 3e-3
ROUND_STEPS = 25  # at least this many steps between held-out evaluations (small blocks: several epochs)
MAX_ROUNDS = 30
PATIENCE = 4  # evaluations without improvement before a layer's probe stops (the paper's code: 4)
MIN_IMPROVEMENT = 1e-3  # nats per word (the paper's code)
HELD_OUT = 0.1
EVAL_CHUNK = 4096  # words per evaluation chunk (bounds memory)
BETAS = (0.9, 0.999)
EPS = 1e-8
Progress = Callable[[int, int], None]


def depth_labels(features: WordFeatures, max_classes: int = MAX_CLASSES) -> list[np.ndarray]:
    """Per sentence, [word] depth class: gold depth (edges from the root), capped at ``max_classes - 1``."""
    labels = []
    for sentence in features.sentences:
        depth = tree_distances(sentence.heads)[sentence.root]
        labels.append(np.minimum(depth, max_classes - 1).astype(np.int64))
    return labels


def class_names(present: list[int], max_classes: int) -> list[str]:
    """Names of the present depth classes; the last possible class reads "K-1+"."""
    return [f"{c}+" if c == max_classes - 1 else str(c) for c in present]


def block_ends(count: int, fractions: tuple[float, ...] = PAPER_FRACTIONS) -> list[int]:
    """Word counts at the block boundaries: floor(fraction * count), empty and repeated blocks dropped."""
    ends: list[int] = []
    for fraction in fractions:
        end = min(count, int(fraction * count + 1e-9))
        if end > (ends[-1] if ends else 0):
            ends.append(end)
    if not ends or ends[-1] != count:
        ends.append(count)
    return ends


def code_bits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[layer, word, class] logits, [word] labels -> [layer] total code length in bits, sum of -log2 p.

    float64: near-certain predictions give log-probabilities far below float32's resolution next to 0.
    """
    log_p = _log_softmax(logits.double())
    picked = log_p.gather(-1, labels.expand(logits.shape[0], -1).unsqueeze(-1)).squeeze(-1)
    return -picked.sum(-1) / math.log(2.0)


def ordered_words(
    features: WordFeatures, layers: list[int], seed: int, max_classes: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Words in the seeded sentence order: standardised vectors [word, layer, hidden] (float16; word-major
    so that the first n words are one contiguous block), labels [word] (0..C-1 over the present classes)
    and the present depth classes."""
    order = np.random.default_rng(seed).permutation(len(features.sentences))
    raw = depth_labels(features, max_classes)
    labels = np.concatenate([raw[i] for i in order])
    present = sorted(set(labels.tolist()))
    index = np.full(max_classes, -1, dtype=np.int64)
    index[present] = np.arange(len(present))
    vectors = torch.cat([torch.from_numpy(features.vectors[i][layers]).transpose(0, 1) for i in order])
    for layer in range(len(layers)):
        values = vectors[:, layer].float()
        mean = values.mean(0)
        std = (values - mean).square_().mean(0).sqrt_()
        scale = torch.where(std > 1e-6, 1.0 / std.clamp_min(1e-6), 0.0)  # constant dimensions carry nothing
        vectors[:, layer] = ((values - mean) * scale).to(vectors.dtype)
    return vectors, torch.from_numpy(index[labels]), present


def online_code_length(
    features: WordFeatures,
    layers: list[int],
    *,
    seed: int = 0,
    max_classes: int = MAX_CLASSES,
    fractions: tuple[float, ...] = PAPER_FRACTIONS,
    progress: Progress | None = None,
) -> dict:
    """Online codelength (bits) of the depth classes given each layer's word vectors (Voita & Titov 2020).

    Returns ``layers``; ``online_bits`` [layer]; ``uniform_bits`` (n log2 C, the same for every layer);
    ``compression`` [layer] = uniform / online; ``blocks`` (the fraction ending each block) and
    ``block_ends`` (its word count); ``block_bits`` [layer][block] (the first is the uniform part);
    ``final_accuracy`` [layer] of the probe trained on all but the last block, on the last block (None
    when there is one block only);
    ``num_words``; ``classes`` (names of the C present classes); ``max_classes``; ``seed``; ``probe``.
    ``progress(step, steps)`` is called after every held-out evaluation (it may raise to cancel).
    """
    if not features.sentences:
        raise InvalidInput("The online code needs at least one sentence with word vectors; none were given.")
    vectors, labels, present = ordered_words(features, layers, seed, max_classes)
    count, classes = int(labels.shape[0]), len(present)
    ends = block_ends(count, fractions)
    bits = torch.zeros(len(layers), len(ends), dtype=torch.float64)
    bits[:, 0] = ends[0] * math.log2(classes)
    accuracy: list[float | None] = [None] * len(layers)  # None: a single block, no probe was trained
    total = sum(ends[:-1]) * MAX_ROUNDS
    done = 0
    for block in range(1, len(ends)):
        start, end = ends[block - 1], ends[block]
        report = _shifted(progress, done, total)
        weights, bias = fit_probes(
            vectors[:start], labels[:start], classes, seed=seed + block, progress=report
        )
        done += start * MAX_ROUNDS
        logits = _logits_chunks(vectors[start:end], weights, bias)
        bits[:, block] = code_bits(logits, labels[start:end])
        if block == len(ends) - 1:
            accuracy = (logits.argmax(-1) == labels[start:end]).double().mean(-1).tolist()
        if progress:
            progress(done, total)
    online = bits.sum(1)
    uniform = count * math.log2(classes)
    compression = [uniform / value if value > 0 else 1.0 for value in online.tolist()]
    return {
        "layers": list(layers),
        "online_bits": online.tolist(),
        "uniform_bits": uniform,
        "compression": compression,
        "blocks": [end / count for end in ends],
        "block_ends": ends,
        "block_bits": bits.tolist(),
        "final_accuracy": accuracy,
        "num_words": count,
        "classes": class_names(present, max_classes),
        "max_classes": max_classes,
        "seed": seed,
        "probe": "linear softmax",
    }


def _shifted(progress: Progress | None, done: int, total: int) -> Progress | None:
    """Progress of one block's training (steps counted in words x rounds) mapped onto the whole run."""
    if progress is None:
        return None

    def report(step: int, steps: int) -> None:
        progress(done + step, total)

    return report


def fit_probes(
    vectors: torch.Tensor,
    labels: torch.Tensor,
    classes: int,
    *,
    seed: int,
    progress: Progress | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear softmax probes of every layer, trained with Adam from zero (the uniform prediction) on the
    first 90% of the words and kept at their best loss on the last 10% (with fewer than 10 words: on the
    training words). vectors [word, layer, hidden] -> weights [layer, hidden, class], bias [layer, class].
    """
    count, layers, hidden = vectors.shape
    held = count // int(round(1 / HELD_OUT))
    fit = count - held
    check = slice(fit, count) if held else slice(0, count)
    state = _Adam(layers, hidden, classes)
    best_loss = _mean_loss(vectors[check], labels[check], state.weights, state.bias)
    best = (state.weights.clone(), state.bias.clone())
    stale = torch.zeros(layers, dtype=torch.long)
    per_epoch = max(1, math.ceil(fit / BATCH_WORDS))
    epochs_per_round = max(1, math.ceil(ROUND_STEPS / per_epoch))
    generator = np.random.default_rng(seed)
    for round_index in range(MAX_ROUNDS):
        for _ in range(epochs_per_round):
            order = torch.from_numpy(generator.permutation(fit))
            for first in range(0, fit, BATCH_WORDS):
                batch = order[first : first + BATCH_WORDS]
                batch_vectors = vectors.index_select(0, batch).float().transpose(0, 1)
                state.step(batch_vectors, labels[batch], stale < PATIENCE)
        loss = _mean_loss(vectors[check], labels[check], state.weights, state.bias)
        improved = loss < best_loss - MIN_IMPROVEMENT
        improved &= stale < PATIENCE  # a stopped layer stays stopped
        best_loss = torch.where(improved, loss, best_loss)
        best[0][improved], best[1][improved] = state.weights[improved], state.bias[improved]
        stale = torch.where(improved, 0, stale + 1)
        state.rate[~improved] *= 0.5
        if progress:
            progress(count * (round_index + 1), count * MAX_ROUNDS)
        if bool((stale >= PATIENCE).all()):
            break
    return best


class _Adam:
    """Adam on linear softmax probes [layer, hidden, class] with a per-layer learning rate; gradients of
    the mean cross-entropy written out (softmax minus one-hot), no autograd."""

    def __init__(self, layers: int, hidden: int, classes: int) -> None:
        self.weights = torch.zeros(layers, hidden, classes)
        self.bias = torch.zeros(layers, classes)
        self.moments = [torch.zeros_like(t) for t in (self.weights, self.bias, self.weights, self.bias)]
        self.rate = torch.full((layers,), LEARNING_RATE)
        self.steps = 0

    def step(self, vectors: torch.Tensor, labels: torch.Tensor, active: torch.Tensor) -> None:
        """One step on a batch: vectors [layer, word, hidden] float32, labels [word]; only ``active``
        layers move (a stopped layer keeps its parameters exactly)."""
        probabilities = _log_softmax(torch.baddbmm(self.bias.unsqueeze(1), vectors, self.weights)).exp_()
        probabilities[:, torch.arange(labels.shape[0]), labels] -= 1.0
        error = probabilities / labels.shape[0]  # d mean CE / d logits, [layer, word, class]
        gradients = (vectors.transpose(1, 2) @ error, error.sum(1))
        self.steps += 1
        correction1 = 1 - BETAS[0] ** self.steps
        correction2 = 1 - BETAS[1] ** self.steps
        scale = (self.rate * active) / correction1
        for index, (param, grad) in enumerate(zip((self.weights, self.bias), gradients, strict=True)):
            first, second = self.moments[index], self.moments[index + 2]
            first.mul_(BETAS[0]).add_(grad, alpha=1 - BETAS[0])
            second.mul_(BETAS[1]).addcmul_(grad, grad, value=1 - BETAS[1])
            denominator = (second / correction2).sqrt_().add_(EPS)
            shape = (-1,) + (1,) * (param.dim() - 1)
            param.sub_(first / denominator * scale.view(shape))


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log softmax over the last dimension, written out: torch's fused kernel goes multi-threaded even on
    a few hundred numbers, and on a busy 2-core machine each call then waits milliseconds for a thread."""
    shifted = logits - logits.amax(-1, keepdim=True)
    return shifted - shifted.exp().sum(-1, keepdim=True).log_()


def _logits_chunks(vectors: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """[word, layer, hidden] (float16) -> logits [layer, word, class], computed in chunks of words."""
    parts = [
        torch.baddbmm(bias.unsqueeze(1), vectors[first : first + EVAL_CHUNK].float().transpose(0, 1), weights)
        for first in range(0, vectors.shape[0], EVAL_CHUNK)
    ]
    return torch.cat(parts, 1) if parts else torch.zeros(bias.shape[0], 0, bias.shape[-1])


def _mean_loss(
    vectors: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """[layer] mean cross-entropy (nats per word)."""
    logits = _logits_chunks(vectors, weights, bias)
    return code_bits(logits, labels).float() * math.log(2.0) / max(labels.shape[0], 1)
