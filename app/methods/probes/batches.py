"""Padded, length-sorted batches of cached word vectors and their gold trees, ready for probe training."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from app.methods.probes.features import WordFeatures
from app.methods.probes.treebank import tree_distances

PROBE_BATCH = 20  # Hewitt & Manning's batch size


@dataclass
class ProbeBatch:
    """One batch: vectors [layer, sentence, word, hidden] (float16), gold [sentence, word(, word)]."""

    vectors: torch.Tensor
    distances: torch.Tensor
    depths: torch.Tensor
    mask: torch.Tensor  # [sentence, word] True on real words
    lengths: torch.Tensor  # [sentence]
    indices: list[int]  # positions in WordFeatures.sentences

    def layer_vectors(self, layers: list[int]) -> torch.Tensor:
        """float32 [layer, sentence, word, hidden] of the chosen layers."""
        return self.vectors[layers].float()


def make_batches(features: WordFeatures, batch_size: int = PROBE_BATCH) -> list[ProbeBatch]:
    """Length-sorted batches (little padding); gold depths count edges from the root (root = 0)."""
    order = sorted(range(len(features.sentences)), key=lambda i: features.sentences[i].length)
    return [_batch(features, order[start : start + batch_size]) for start in range(0, len(order), batch_size)]


def _batch(features: WordFeatures, indices: list[int]) -> ProbeBatch:
    longest = max(features.sentences[i].length for i in indices)
    layers, _, hidden = features.vectors[indices[0]].shape
    vectors = np.zeros((layers, len(indices), longest, hidden), dtype=features.vectors[indices[0]].dtype)
    distances = np.zeros((len(indices), longest, longest), dtype=np.float32)
    depths = np.zeros((len(indices), longest), dtype=np.float32)
    mask = np.zeros((len(indices), longest), dtype=bool)
    for row, index in enumerate(indices):
        sentence = features.sentences[index]
        count = sentence.length
        vectors[:, row, :count] = features.vectors[index]
        gold = tree_distances(sentence.heads)
        distances[row, :count, :count] = gold
        depths[row, :count] = gold[sentence.root]
        mask[row, :count] = True
    return ProbeBatch(
        vectors=torch.from_numpy(vectors),
        distances=torch.from_numpy(distances),
        depths=torch.from_numpy(depths),
        mask=torch.from_numpy(mask),
        lengths=torch.from_numpy(mask.sum(1).astype(np.float32)),
        indices=list(indices),
    )


def shuffled(batches: list[ProbeBatch], seed: int) -> Iterator[ProbeBatch]:
    """The batches in a seeded random order (composition fixed, order varies per epoch)."""
    generator = np.random.default_rng(seed)
    for index in generator.permutation(len(batches)):
        yield batches[int(index)]
