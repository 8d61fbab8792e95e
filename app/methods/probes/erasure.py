"""Erase bucketed tree depth from one layer's token states: LEACE, and a random subspace of the same rank.

Belrose et al., "LEACE: Perfect linear concept erasure in closed form", NeurIPS 2023
(https://arxiv.org/abs/2306.03819), package ``concept-erasure``: the affine map x -> x - A (x - mu) of least
mean squared change after which the cross-covariance of x and the one-hot concept is zero, so every class
has the same mean and no linear classifier beats a constant one (for any convex loss). The concept is the
gold depth of each subword's word, bucketed 0, 1, 2, 3, 4, 5+ (Elazar et al., "Amnesic Probing", TACL 2021,
erase what a probe reads, then ask what the model loses). The control erases a random rank-r subspace of the
centred states, x -> x - Q Q^T (x - mu), with r the rank of LEACE's A.

Fitting uses the TRAIN treebank, token level: each subword of a word gets its word's bucket; special
tokens, padding and subwords shared by two treebank words are not used. Each erasure is stored as three
arrays, ``left`` [hidden, r], ``right`` [r, hidden] and ``bias`` [hidden] (A = left @ right, mu = bias),
which is all ``apply_erasure`` needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from concept_erasure import LeaceFitter

from app.errors import InvalidInput
from app.methods.probes.features import encode_sentences
from app.methods.probes.treebank import TreeSentence, tree_distances
from app.modeling.loading import LoadedModel

Progress = Callable[[int, int], None]
DEPTH_BUCKETS = 6  # depths 0..4 each their own class, 5 and deeper one class
BUCKET_NAMES = ["0", "1", "2", "3", "4", "5+"]
TOKEN_BATCH = 32
# the package's default (0.01) drops weak directions of the whitened cross-covariance and leaves their class
# means apart; statistics are float64, so a tiny threshold keeps every real direction and only the exact
# zero of the one-hot columns' sum
SVD_TOLERANCE = 1e-6
RANK_TOLERANCE = 1e-9  # relative singular value under which A's factor is dropped (A is exactly rank r)
ARRAY_NAMES = ("left", "right", "bias")
KINDS = ("leace", "random")


@dataclass
class ErasurePair:
    """The LEACE and random erasures of one layer (arrays ``left``, ``right``, ``bias``) and their fit."""

    layer: int
    leace: dict[str, np.ndarray]
    random: dict[str, np.ndarray]
    rank: int
    fit: dict = field(default_factory=dict)

    def arrays(self, kind: str) -> dict[str, np.ndarray]:
        if kind not in KINDS:
            raise InvalidInput(f"Unknown erasure {kind!r}; use one of {', '.join(KINDS)}.")
        return self.leace if kind == "leace" else self.random


def depth_bucket(depths: np.ndarray) -> np.ndarray:
    """Tree depths -> bucket index 0..5 (5 = depth 5 or more)."""
    return np.minimum(depths, DEPTH_BUCKETS - 1).astype(np.int64)


def erasure_function(arrays: Mapping[str, np.ndarray], device: torch.device) -> Callable:
    """x -> x - ((x - bias) @ right.T) @ left.T on the last axis, in float32, returned in x's dtype."""
    left, right, bias = (
        torch.as_tensor(arrays[name], dtype=torch.float32, device=device) for name in ARRAY_NAMES
    )

    def erase(hidden: torch.Tensor) -> torch.Tensor:
        states = hidden.float()
        return (states - ((states - bias) @ right.T) @ left.T).to(hidden.dtype)

    return erase


def apply_erasure(hidden: torch.Tensor, arrays: Mapping[str, np.ndarray]) -> torch.Tensor:
    """Apply a stored erasure (``left``, ``right``, ``bias``) to states [..., hidden]."""
    return erasure_function(arrays, hidden.device)(hidden)


def fit_depth_erasers(
    loaded: LoadedModel,
    train_sentences: Sequence[TreeSentence],
    layers: Sequence[int] | None = None,
    *,
    max_tokens: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[int, ErasurePair]:
    """LEACE and random erasers of bucketed depth for each layer (None = 0..num_layers), fitted on the token
    states of ``train_sentences`` (never the evaluation split). ``progress(done, total)`` may raise."""
    layers = list(range(loaded.num_layers + 1)) if layers is None else sorted(set(layers))
    if not layers or min(layers) < 0 or max(layers) > loaded.num_layers:
        raise InvalidInput(f"Layers must lie in 0..{loaded.num_layers}; got {layers}.")
    fitters = {layer: depth_fitter(loaded.hidden_size) for layer in layers}
    counts = np.zeros(DEPTH_BUCKETS, dtype=np.int64)
    skipped: dict[str, int] = {}
    for start in range(0, len(train_sentences), TOKEN_BATCH):
        batch = list(train_sentences[start : start + TOKEN_BATCH])
        states, buckets, reasons = token_states(loaded, batch, max_tokens)
        for reason in reasons:
            skipped[reason] = skipped.get(reason, 0) + 1
        if states is not None and len(buckets):
            one_hot = torch.nn.functional.one_hot(torch.from_numpy(buckets), DEPTH_BUCKETS).double()
            for layer in layers:
                fitters[layer].update(states[layer].double().cpu(), one_hot)
            counts += np.bincount(buckets, minlength=DEPTH_BUCKETS)
        if progress:
            progress(min(start + TOKEN_BATCH, len(train_sentences)), len(train_sentences))
    if counts.sum() < 2 or (counts > 0).sum() < 2:
        raise InvalidInput("Fitting an eraser needs tokens of at least two depth buckets.")
    fit = {
        "tokens": int(counts.sum()),
        "bucket_counts": counts.tolist(),
        "majority_share": float(counts.max() / counts.sum()),
        "skipped_sentences": skipped,
    }
    return {layer: _pair(layer, fitters[layer], fit, seed) for layer in layers}


def depth_fitter(hidden: int) -> LeaceFitter:
    """The LEACE fitter every layer uses: float64 statistics, exact erasure (no trace constraint, which would
    mix in an orthogonal projection that no longer zeroes the cross-covariance), tiny SVD threshold."""
    return LeaceFitter(
        hidden, DEPTH_BUCKETS, dtype=torch.float64, constrain_cov_trace=False, svd_tol=SVD_TOLERANCE
    )


def _pair(layer: int, fitter: LeaceFitter, fit: dict, seed: int) -> ErasurePair:
    eraser = fitter.eraser
    removed = eraser.proj_left @ eraser.proj_right  # A = I - P, [hidden, hidden], float64
    u, s, vh = torch.linalg.svd(removed)
    rank = int((s > RANK_TOLERANCE * max(float(s[0]), 1e-300)).sum()) if len(s) else 0
    mean = fitter.mean_x.numpy()
    leace = {
        "left": (u[:, :rank] * s[:rank]).numpy().astype(np.float32),
        "right": vh[:rank].numpy().astype(np.float32),
        "bias": mean.astype(np.float32),
    }
    basis = random_basis(mean.shape[0], rank, np.random.default_rng([seed, layer]))
    random = {"left": basis, "right": basis.T.copy(), "bias": mean.astype(np.float32)}
    sigma = fitter.sigma_xx
    kept = torch.eye(len(mean), dtype=sigma.dtype) - removed
    trace_ratio = float(torch.trace(kept @ sigma @ kept.T) / torch.trace(sigma))
    return ErasurePair(layer, leace, random, rank, {**fit, "covariance_trace_ratio": trace_ratio})


def random_basis(hidden: int, rank: int, rng: np.random.Generator) -> np.ndarray:
    """An orthonormal basis [hidden, rank] of a uniformly random rank-``rank`` subspace (QR of a Gaussian)."""
    q, r = np.linalg.qr(rng.standard_normal((hidden, rank)))
    return (q * np.sign(np.diag(r))).astype(np.float32) if rank else np.zeros((hidden, 0), np.float32)


@torch.no_grad()
def token_states(
    loaded: LoadedModel, batch: list[TreeSentence], max_tokens: int
) -> tuple[torch.Tensor | None, np.ndarray, list[str]]:
    """Hidden states of every layer at the usable subwords [layer, token, hidden], their words' depth
    buckets [token], and a skip reason per unusable sentence (encoded as ``features.compute_word_features``
    does)."""
    encoded, groups, lengths = encode_sentences(loaded, batch)
    keep = [length <= max_tokens and all(groups[i]) for i, length in enumerate(lengths)]
    reasons = [
        "too many subwords" if lengths[i] > max_tokens else "word without subword"
        for i in range(len(batch))
        if not keep[i]
    ]
    kept = [i for i, k in enumerate(keep) if k]
    if not kept:
        return None, np.zeros(0, dtype=np.int64), reasons
    rows, positions, buckets = _labelled_positions(batch, groups, kept)
    if not rows:
        return None, np.zeros(0, dtype=np.int64), reasons
    width = max(lengths[i] for i in kept) if loaded.tokenizer.padding_side == "right" else None
    inputs = {key: value[torch.tensor(kept), :width].to(loaded.device) for key, value in encoded.items()}
    outputs = loaded.model.base_model(**inputs, output_hidden_states=True)
    hidden = torch.stack(outputs.hidden_states)  # [layer, sentence, token, hidden]
    states = hidden[
        :, torch.tensor(rows, dtype=torch.long), torch.tensor(positions, dtype=torch.long)
    ].float()
    return states, np.asarray(buckets, dtype=np.int64), reasons


def _labelled_positions(
    batch: list[TreeSentence], groups: list[list[list[int]]], kept: list[int]
) -> tuple[list[int], list[int], list[int]]:
    """(row among kept, subword position, depth bucket) of each subword that belongs to exactly one word."""
    rows, positions, buckets = [], [], []
    for row, index in enumerate(kept):
        sentence = batch[index]
        depths = depth_bucket(tree_distances(sentence.heads)[sentence.root])
        owners: dict[int, list[int]] = {}
        for word, members in enumerate(groups[index]):
            for position in members:
                owners.setdefault(position, []).append(word)
        for position in sorted(owners):
            if len(owners[position]) == 1:
                rows.append(row)
                positions.append(position)
                buckets.append(int(depths[owners[position][0]]))
    return rows, positions, buckets


def pack_erasers(erasers: Mapping[int, ErasurePair]) -> dict[str, np.ndarray]:
    """Flat arrays for a probe set's weights: ``amnesic.{layer}.{kind}.{left|right|bias}``."""
    return {
        f"amnesic.{layer}.{kind}.{name}": pair.arrays(kind)[name]
        for layer, pair in erasers.items()
        for kind in KINDS
        for name in ARRAY_NAMES
    }


def unpack_erasers(arrays: Mapping[str, np.ndarray]) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """The inverse of ``pack_erasers``: {layer: {kind: {name: array}}} (other keys are ignored)."""
    erasers: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    for key, value in arrays.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[0] == "amnesic" and parts[2] in KINDS and parts[3] in ARRAY_NAMES:
            erasers.setdefault(int(parts[1]), {}).setdefault(parts[2], {})[parts[3]] = np.asarray(value)
    return erasers
