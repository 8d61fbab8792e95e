"""Neuron descriptions across corpora, their stability, the illusion check and the random-direction control.

Mondal et al., "Towards Generating Informative Textual Description for Neurons in Language Models" (arXiv
2401.16731, 2024): descriptors proposed for the sentences of a corpus are clustered into candidates and tied
to neurons without supervision (here: enrichment among a neuron's top exemplar sentences, see
:mod:`app.methods.neurons.association`), fitted on a calibration split and checked on the held-out split
(Jaccard of the two top-2 sets). Bolukbasi et al., "An Interpretability Illusion for BERT" (arXiv
2104.07143, 2021): a neuron's story can change with the corpus, and random directions get stories too. So
descriptors come from one candidate set shared by all corpora, each corpus is described separately, and a
neuron is labelled

- ``consistent``: described on two or more corpora whose descriptor sets overlap (Jaccard >= 0.3, mean
  over corpus pairs),
- ``inconsistent``: described on two or more corpora with (almost) disjoint descriptors,
- ``corpus-specific``: described on exactly one corpus,
- ``undescribed``: no significant descriptor anywhere (``single corpus`` when only one corpus is indexed).

Random unit directions in each layer's activation space go through the identical pipeline; the summary
compares how often they receive a description with how often neurons do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import combinations

import numpy as np

from app.methods.neurons.association import (
    NeuronAssociations,
    associate,
    association_stability,
    split_sentences,
)
from app.methods.neurons.descriptors import DescriptorSet, discover_descriptors
from app.methods.neurons.directions import direction_scores, random_directions, top_sentences
from app.methods.neurons.generators import DescriptorGenerator
from app.methods.neurons.units import NEURONS, UnitBasis
from app.modeling.loading import LoadedModel

Progress = Callable[[int, int], None]
CONSISTENT_JACCARD = 0.3
KEPT_DESCRIPTORS = 5  # per neuron and corpus
TOP_TOKENS = 10  # exemplars whose tokens are compared across corpora
GENERATION_CHUNK = 64
LABELS = ("consistent", "inconsistent", "corpus-specific", "undescribed", "single corpus")


@dataclass
class CorpusExemplars:
    """One indexed corpus: its sentences, and per neuron the top exemplars (sentence id, token position)."""

    name: str
    index_id: str
    sentences: list[str]
    top_sentences: np.ndarray  # [layer, unit, k] -1 = empty
    top_positions: np.ndarray  # [layer, unit, k]


@dataclass
class Described:
    """Per unit (neuron or direction): descriptors per corpus, stability, consistency and label."""

    descriptors: dict[str, list[list]]  # corpus -> [[descriptor index, score, count, q], ...]
    stability: dict[str, float | None]
    consistency: float | None
    token_overlap: float | None
    label: str


@dataclass
class DescriptionRun:
    """Everything a description run produced (stored as one set plus one row per unit; the random
    directions' rows as a set of their own)."""

    descriptor_set: DescriptorSet
    corpora: list[str]
    neurons: list[Described]  # the basis's units, slot-major: [slot * units + unit]
    num_units: int
    summary: dict = field(default_factory=dict)
    basis: str = NEURONS.key
    randoms: list[Described] = field(default_factory=list)  # per random direction, in direction order
    direction_layers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


DirectionScores = Callable[[LoadedModel, list[str], np.ndarray, np.ndarray, int], np.ndarray]


def describe_corpora(
    loaded: LoadedModel,
    corpora: list[CorpusExemplars],
    generator: DescriptorGenerator,
    *,
    directions: int,
    seed: int = 0,
    batch_size: int = 32,
    progress: Progress | None = None,
    scores_of: DirectionScores | None = None,
    basis: UnitBasis = NEURONS,
) -> DescriptionRun:
    """Generate descriptors for every sentence, cluster them once, describe the units of ``basis`` (the
    corpora's exemplars were indexed over it) and random directions in the space it reads.

    ``scores_of``: the random directions' per-sentence maxima over a corpus (the one pass over every corpus
    sentence), here by default or in shards elsewhere (:mod:`app.jobs.sharded_map`).
    """
    scores_of = scores_of or partial(direction_scores, basis=basis)
    union = [sentence for corpus in corpora for sentence in corpus.sentences]
    offsets = np.cumsum([0] + [len(corpus.sentences) for corpus in corpora])
    steps = len(union) + len(corpora) * 2
    generated: list[list[str]] = []
    for start in range(0, len(union), GENERATION_CHUNK):
        generated.extend(generator.describe(union[start : start + GENERATION_CHUNK]))
        if progress:
            progress(len(generated), steps)
    descriptor_set = discover_descriptors(loaded, generated, generator.describe_generator())
    layers, units = corpora[0].top_sentences.shape[:2]
    vectors, direction_layers = random_directions(loaded, directions, seed, basis)
    neuron_views, direction_views = [], []
    for number, (corpus, offset) in enumerate(zip(corpora, offsets, strict=False)):
        exemplars = corpus.top_sentences.reshape(layers * units, -1)
        canonical = first_occurrences(corpus.sentences)
        neuron_views.append(_describe_view(exemplars, offset, canonical, descriptor_set.tags, seed))
        if progress:
            progress(len(union) + 2 * number + 1, steps)
        scores = scores_of(loaded, corpus.sentences, vectors, direction_layers, batch_size)
        found = top_sentences(scores, exemplars.shape[1])
        direction_views.append(_describe_view(found, offset, canonical, descriptor_set.tags, seed))
        if progress:
            progress(len(union) + 2 * number + 2, steps)
    names = [corpus.name for corpus in corpora]
    tokens = [_top_tokens(loaded, corpus) for corpus in corpora]
    neurons = _combine(names, neuron_views, tokens)
    randoms = _combine(names, direction_views, None)
    summary = _summary(neurons, randoms, names, descriptor_set, direction_layers, basis.key)
    return DescriptionRun(
        descriptor_set, names, neurons, units, summary, basis.key, randoms, direction_layers
    )


@dataclass
class _View:
    full: NeuronAssociations
    stability: np.ndarray


def first_occurrences(sentences: list[str]) -> np.ndarray:
    """Per sentence the id of the first identical sentence of the corpus (its own id when it is the first)."""
    first: dict[str, int] = {}
    return np.array([first.setdefault(text, number) for number, text in enumerate(sentences)], dtype=np.int64)


def _describe_view(
    exemplars: np.ndarray, offset: int, canonical: np.ndarray, tags: np.ndarray, seed: int
) -> _View:
    """Associations on the whole corpus, and calibration vs held-out stability (ids into the union).

    Repeated sentences count once: exemplar ids map to their first occurrence and the universe holds
    distinct sentences only, so a text repeated many times in a corpus cannot fill a neuron's exemplars
    with copies that the hypergeometric test would take for independent evidence.
    """
    shifted = np.where(exemplars >= 0, canonical[np.where(exemplars >= 0, exemplars, 0)] + offset, -1)
    distinct = np.unique(canonical)
    full = associate(shifted, tags, universe=distinct + offset)
    calibration, heldout = split_sentences(len(distinct), seed=seed)
    stability = association_stability(
        associate(shifted, tags, universe=distinct[calibration] + offset),
        associate(shifted, tags, universe=distinct[heldout] + offset),
    )
    return _View(full, stability)


def _top_tokens(loaded: LoadedModel, corpus: CorpusExemplars) -> list[set[str]]:
    """Per neuron, the lower-cased tokens at its top exemplar positions."""
    ids = loaded.tokenizer(corpus.sentences, truncation=True, return_attention_mask=False)["input_ids"]
    tokens = [loaded.tokenizer.convert_ids_to_tokens(row) for row in ids]
    sentences = corpus.top_sentences[..., :TOP_TOKENS].reshape(
        -1, min(TOP_TOKENS, corpus.top_sentences.shape[-1])
    )
    positions = corpus.top_positions[..., :TOP_TOKENS].reshape(sentences.shape)
    return [
        {
            tokens[s][p].lower().lstrip("#Ġ▁")
            for s, p in zip(row_s, row_p, strict=True)
            if s >= 0 and p < len(tokens[s])
        }
        for row_s, row_p in zip(sentences, positions, strict=True)
    ]


def _jaccard(a: set, b: set) -> float | None:
    return len(a & b) / len(a | b) if a | b else None


def _combine(names: list[str], views: list[_View], tokens: list[list[set[str]]] | None) -> list[Described]:
    described = []
    for unit in range(len(views[0].full.ranked)):
        lists = {
            name: [list(a)[:3] + [a.q] for a in view.full.ranked[unit][:KEPT_DESCRIPTORS]]
            for name, view in zip(names, views, strict=True)
        }
        sets = [{entry[0] for entry in lists[name]} for name in names]
        described_in = [name for name in names if lists[name]]
        pairs = [_jaccard(a, b) for a, b in combinations(sets, 2) if a and b]
        consistency = float(np.mean(pairs)) if pairs else None
        overlap = None
        if tokens is not None and len(names) > 1:
            values = [
                _jaccard(tokens[i][unit], tokens[j][unit]) for i, j in combinations(range(len(names)), 2)
            ]
            values = [v for v in values if v is not None]
            overlap = float(np.mean(values)) if values else None
        stability = {
            name: (None if np.isnan(view.stability[unit]) else float(view.stability[unit]))
            for name, view in zip(names, views, strict=True)
        }
        described.append(
            Described(
                lists, stability, consistency, overlap, _label(len(names), len(described_in), consistency)
            )
        )
    return described


def _label(corpora: int, described: int, consistency: float | None) -> str:
    if corpora == 1:
        return "single corpus"
    if described == 0:
        return "undescribed"
    if described == 1:
        return "corpus-specific"
    return "consistent" if (consistency or 0.0) >= CONSISTENT_JACCARD else "inconsistent"


def _group(items: list[Described], names: list[str]) -> dict:
    """Share of units described per corpus, mean stability, best score, label counts."""
    count = max(len(items), 1)
    per_corpus = {}
    for name in names:
        best = [entries[0][1] for item in items if (entries := item.descriptors[name])]
        stable = [value for item in items if (value := item.stability[name]) is not None]
        per_corpus[name] = {
            "described_fraction": len(best) / count,
            "mean_best_score": float(np.mean(best)) if best else None,
            "mean_stability": float(np.mean(stable)) if stable else None,
        }
    labels = {label: sum(item.label == label for item in items) / count for label in LABELS}
    consistencies = [item.consistency for item in items if item.consistency is not None]
    return {
        "units": len(items),
        "per_corpus": per_corpus,
        "labels": {key: value for key, value in labels.items() if value},
        "mean_consistency": float(np.mean(consistencies)) if consistencies else None,
    }


def _summary(
    neurons: list[Described],
    randoms: list[Described],
    names: list[str],
    descriptor_set: DescriptorSet,
    direction_layers: np.ndarray,
    basis: str,
) -> dict:
    units = _group(neurons, names)
    return {
        "basis": basis,
        "corpora": names,
        "descriptors": len(descriptor_set.labels),
        "generator": descriptor_set.generator,
        "units": units,
        **({"neurons": units} if basis == NEURONS.key else {}),
        "random_directions": {
            **_group(randoms, names),
            "per_layer": {
                str(layer): int(count)
                for layer, count in zip(*np.unique(direction_layers, return_counts=True), strict=True)
            },
        },
        "thresholds": {"consistent_jaccard": CONSISTENT_JACCARD, "kept_descriptors": KEPT_DESCRIPTORS},
    }
