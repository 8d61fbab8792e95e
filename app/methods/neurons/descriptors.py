"""The candidate descriptor set: generated descriptors clustered into labels, and which sentence has which.

Mondal et al., "Towards Generating Informative Textual Description for Neurons in Language Models"
(arXiv 2401.16731, 2024, https://arxiv.org/abs/2401.16731) cluster the descriptors a generative model
proposed for a corpus so that near-synonyms ("football", "football match") become one candidate
description. Here: embed every distinct descriptor with the encoder (unit-norm mean pooling), cluster with
average-linkage agglomerative clustering on cosine distance cut at ``distance_threshold``, label each
cluster by the member closest to its centroid (ties: the most frequent), and drop clusters found in fewer
than ``min_sentences`` sentences. Phrases in ``keep_apart`` (default: the offline generator's rule-based
surface descriptors, whose distinctions, e.g. first vs second person, embeddings blur) stay alone.

Output: ``DescriptorSet.tags`` [sentence, descriptor] bool, True when any of the sentence's generated
descriptors belongs to that descriptor's cluster. Invariant: every column has at least ``min_sentences``
True entries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from app.errors import InvalidInput
from app.methods.neurons.generators import DEFAULT_EMBED_BATCH, embed_texts
from app.methods.neurons.generators_surface import SURFACE_DESCRIPTORS, normalise_descriptor
from app.modeling.loading import LoadedModel

DEFAULT_DISTANCE_THRESHOLD = 0.35  # average cosine similarity >= 0.65 inside a cluster
DEFAULT_MIN_SENTENCES = 3
DEFAULT_MAX_CLUSTERED = 4000  # the pairwise distance matrix of this many phrases is 128 MB
TIE_TOLERANCE = 1e-6


@dataclass
class DescriptorSet:
    """Candidates: ``labels[d]`` names cluster d, ``members[d]`` lists its phrases, ``tags`` who has it."""

    labels: list[str]
    members: list[list[str]]
    tags: np.ndarray  # [sentence, descriptor] bool
    generator: dict
    params: dict = field(default_factory=dict)

    @property
    def num_sentences(self) -> int:
        return int(self.tags.shape[0])

    @property
    def support(self) -> np.ndarray:
        """Number of sentences carrying each descriptor, [descriptor]."""
        return self.tags.sum(axis=0)

    def to_dict(self) -> dict:
        """JSON-able form; ``tagged[d]`` lists the (sorted) ids of the sentences carrying descriptor d."""
        return {
            "labels": list(self.labels),
            "members": [list(group) for group in self.members],
            "num_sentences": self.num_sentences,
            "tagged": [np.flatnonzero(column).tolist() for column in self.tags.T],
            "generator": dict(self.generator),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: dict) -> DescriptorSet:
        tags = np.zeros((int(data["num_sentences"]), len(data["labels"])), dtype=bool)
        for column, rows in enumerate(data["tagged"]):
            tags[np.asarray(rows, dtype=np.int64), column] = True
        return cls(
            labels=list(data["labels"]),
            members=[list(group) for group in data["members"]],
            tags=tags,
            generator=dict(data.get("generator", {})),
            params=dict(data.get("params", {})),
        )


def cluster_descriptors(
    embeddings: np.ndarray,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
    max_clustered: int = DEFAULT_MAX_CLUSTERED,
) -> np.ndarray:
    """Cluster id per phrase, [phrase]; -1 for a phrase left out. ``embeddings`` [phrase, hidden] unit norm.

    The first ``max_clustered`` rows (pass them most frequent first) are clustered exactly; each later row
    joins the cluster at the smallest average cosine distance when that is within the threshold (the
    average-linkage criterion for a singleton: 1 - x . mean(cluster) for unit vectors), else gets -1.
    """
    count = len(embeddings)
    head = embeddings[:max_clustered]
    if len(head) < 2:
        ids = np.zeros(len(head), dtype=np.int64)
    else:
        model = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance_threshold
        )
        ids = model.fit_predict(head).astype(np.int64)
    if count <= max_clustered:
        return ids
    means = np.stack([head[ids == c].mean(axis=0) for c in range(ids.max() + 1)])  # [cluster, hidden]
    distance = 1.0 - embeddings[max_clustered:] @ means.T  # [phrase, cluster]
    nearest = distance.argmin(axis=1)
    tail = np.where(distance[np.arange(len(nearest)), nearest] <= distance_threshold, nearest, -1)
    return np.concatenate([ids, tail])


def representative(embeddings: np.ndarray, frequency: np.ndarray, names: list[str]) -> int:
    """Index of the member closest (cosine) to the centroid; ties by frequency, then shorter, then a-z."""
    centroid = embeddings.mean(axis=0)
    norm = np.linalg.norm(centroid)
    similarity = embeddings @ (centroid / norm if norm > 0 else centroid)
    best = similarity.max()
    tied = [i for i in range(len(names)) if similarity[i] >= best - TIE_TOLERANCE]
    return min(tied, key=lambda i: (-int(frequency[i]), len(names[i]), names[i]))


def _clean_lists(per_sentence: list[list[str]]) -> list[list[str]]:
    cleaned = []
    for descriptors in per_sentence:
        normalised = (normalise_descriptor(d) for d in descriptors)
        cleaned.append(list(dict.fromkeys(d for d in normalised if d is not None)))
    return cleaned


def descriptor_set_from_embeddings(
    per_sentence: list[list[str]],
    phrases: list[str],
    embeddings: np.ndarray,
    generator: dict,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
    min_sentences: int = DEFAULT_MIN_SENTENCES,
    max_clustered: int = DEFAULT_MAX_CLUSTERED,
    keep_apart: Iterable[str] = SURFACE_DESCRIPTORS,
) -> DescriptorSet:
    """Cluster ``phrases`` (their ``embeddings`` [phrase, hidden], unit norm) and tag the sentences."""
    per_sentence = _clean_lists(per_sentence)
    frequency_of = Counter(d for descriptors in per_sentence for d in descriptors)
    apart = set(keep_apart)
    order = sorted(
        range(len(phrases)), key=lambda i: (phrases[i] in apart, -frequency_of[phrases[i]], phrases[i])
    )
    phrases, embeddings = [phrases[i] for i in order], embeddings[order]
    frequency = np.array([frequency_of[p] for p in phrases], dtype=np.int64)
    alone = sum(p in apart for p in phrases)  # sorted last
    ids = cluster_descriptors(embeddings[: len(phrases) - alone], distance_threshold, max_clustered)
    first_alone = int(ids.max()) + 1 if len(ids) else 0
    ids = np.concatenate([ids, np.arange(first_alone, first_alone + alone, dtype=np.int64)])
    cluster_of = dict(zip(phrases, ids.tolist(), strict=True))
    groups = {c: np.flatnonzero(ids == c) for c in np.unique(ids[ids >= 0]).tolist()}
    tags = np.zeros((len(per_sentence), len(groups)), dtype=bool)
    column_of = {c: k for k, c in enumerate(groups)}
    for row, descriptors in enumerate(per_sentence):
        for d in descriptors:
            if cluster_of.get(d, -1) >= 0:
                tags[row, column_of[cluster_of[d]]] = True
    labels, members = [], []
    for members_idx in groups.values():
        names = [phrases[i] for i in members_idx]
        labels.append(names[representative(embeddings[members_idx], frequency[members_idx], names)])
        members.append(names)
    support = tags.sum(axis=0)
    keep = sorted(
        (k for k in range(len(labels)) if support[k] >= min_sentences), key=lambda k: (-support[k], labels[k])
    )
    params = {"distance_threshold": distance_threshold, "min_sentences": min_sentences}
    return DescriptorSet(
        [labels[k] for k in keep], [members[k] for k in keep], tags[:, keep], dict(generator), params
    )


def discover_descriptors(
    loaded: LoadedModel,
    per_sentence: list[list[str]],
    generator: dict,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
    min_sentences: int = DEFAULT_MIN_SENTENCES,
    batch_size: int = DEFAULT_EMBED_BATCH,
    keep_apart: Iterable[str] = SURFACE_DESCRIPTORS,
) -> DescriptorSet:
    """The candidate set from generated descriptors (one list per sentence), embedded with ``loaded``.

    ``generator`` is the generator's ``describe_generator()``, kept so the UI can say where labels came from.
    """
    if not 0 < distance_threshold < 2:
        raise InvalidInput("distance_threshold is a cosine distance: give a value between 0 and 2.")
    if min_sentences < 1:
        raise InvalidInput("min_sentences must be at least 1.")
    per_sentence = _clean_lists(per_sentence)
    phrases = sorted({d for descriptors in per_sentence for d in descriptors})
    embeddings = embed_texts(loaded, phrases, batch_size)  # [phrase, hidden]
    return descriptor_set_from_embeddings(
        per_sentence, phrases, embeddings, generator, distance_threshold, min_sentences, keep_apart=keep_apart
    )
