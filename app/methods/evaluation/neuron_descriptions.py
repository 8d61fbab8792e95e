"""Evaluation of unsupervised neuron descriptions against sentence-level concepts from labelled data.

Mondal et al., "Towards Generating Informative Textual Description for Neurons in Language Models"
(arXiv 2401.16731, 2024, https://arxiv.org/abs/2401.16731) tie neurons to descriptors without supervision
and report 75% precision@2 / 50% recall@2 on BERT-base. This module scores that kind of association
(:func:`app.methods.neurons.association.associate`) against a ground truth built from labelled data.

Protocol:

1. Concepts. Every labelled dataset (name, texts, labels) contributes one concept per label, tagged
   ``"dataset:label_name"`` (e.g. ``"ag_news:Sports"``, ``"sst2:positive"``). All datasets' sentences are
   pooled; each carries exactly one concept. Sentences without a non-special token are dropped.
2. Split. ``split_sentences(n, seed)`` splits the pooled sentences into a calibration and a held-out half.
3. Activations. A neuron's activation on a sentence is its maximum over the sentence's non-special tokens
   (:func:`app.methods.neurons.index.sentence_activations`), ``[sentence, layer, unit]``.
4. Ground truth (held-out half only). For neuron i and concept c of dataset d, AUROC_ic is the area under
   the ROC curve of the neuron's sentence activation separating held-out sentences of d that carry c from
   held-out sentences of d that do not (other datasets' sentences take no part). It is one-sided: a
   neuron that fires *less* on c does not have c. True concepts T_i = {c : AUROC_ic >= threshold}.
5. Prediction (calibration half only). The neuron's exemplars are its ``exemplars`` highest-activating
   calibration sentences; ``associate`` ranks the concepts enriched among them against the calibration
   base rates (hypergeometric test, Benjamini-Hochberg within the neuron, alpha, min_count). It sees only
   which sentences the neuron likes and which concepts they carry; no held-out label is used.
   Predicted concepts P_i = the first ``top`` ranked concepts (possibly fewer, possibly none).
6. Metrics. ``precision_recall_at_k`` over the neurons with at least one true concept: recall@k = mean
   |P_i & T_i| / |T_i|, precision@k = the same over |P_i| among those neurons with a prediction.
   Per dataset d: truth and ranked predictions restricted to d's concepts (predictions keep their order).
   Also reported: the fraction of neurons with a true concept, and precision over *all* neurons with a
   prediction (true concept or not), which shows how many predictions land on neurons without one.
7. Controls. Random directions: in each layer, as many random unit vectors as there are units; a
   direction's sentence activation is the projection of the sentence's per-unit maxima onto it; the same
   pipeline (truth, exemplars, association) is run on them. Permutation: the predictions of the evaluated
   neurons shuffled among those neurons (mean of ``PERMUTATION_REPEATS`` seeded shuffles): the chance level
   of matching a neuron with some other neuron's descriptions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata

from app.errors import InvalidInput
from app.methods.neurons.association import DEFAULT_ALPHA, associate, precision_recall_at_k, split_sentences
from app.methods.neurons.index import DEFAULT_BATCH_SIZE, sentence_activations
from app.modeling.loading import LoadedModel

DEFAULT_EXEMPLARS = 50
DEFAULT_TOP = 2
DEFAULT_AUROC_THRESHOLD = 0.75
REPORTED_KS = (1, 2, 3)
PERMUTATION_REPEATS = 20
SEPARATOR = ":"
AG_NEWS_LABELS = {"0": "World", "1": "Sports", "2": "Business", "3": "SciTech"}
SST2_LABELS = {"0": "negative", "1": "positive"}
NEURONS, RANDOM, PERMUTED = "neurons", "random_directions", "permutation"


class LabelledSet(NamedTuple):
    """One labelled dataset; a plain ``(name, texts, labels)`` tuple works as well."""

    name: str
    texts: list[str]
    labels: list[str]


@dataclass
class ConceptTags:
    """Pooled sentences and their concept tags."""

    texts: list[str]
    tags: np.ndarray  # [sentence, concept] bool, one True per row
    concepts: list[str]  # "dataset:label_name"
    datasets: list[str]
    sentence_dataset: np.ndarray  # [sentence] dataset index
    concept_dataset: np.ndarray  # [concept] dataset index

    def subset(self, rows: np.ndarray) -> ConceptTags:
        """The same concepts over the sentences ``rows`` only."""
        texts = [self.texts[i] for i in rows]
        return ConceptTags(
            texts,
            self.tags[rows],
            self.concepts,
            self.datasets,
            self.sentence_dataset[rows],
            self.concept_dataset,
        )


def concept_tags(
    datasets: Sequence[tuple[str, list[str], list[str]]],
    label_names: Mapping[str, Mapping[str, str]] | None = None,
) -> ConceptTags:
    """Pool ``datasets``; ``label_names[dataset][label]`` names a label (default: the label itself)."""
    names = [name for name, _, _ in datasets]
    if not datasets or len(set(names)) != len(names):
        raise InvalidInput("Give at least one labelled dataset, each with a distinct name.")
    texts: list[str] = []
    concepts: list[str] = []
    concept_dataset: list[int] = []
    sentence_concept: list[int] = []
    sentence_dataset: list[int] = []
    for index, (name, data_texts, labels) in enumerate(datasets):
        if len(data_texts) != len(labels) or len(set(labels)) < 2:
            raise InvalidInput(f"Dataset {name!r} needs one label per text and at least two distinct labels.")
        mapping = (label_names or {}).get(name, {})
        tags = [f"{name}{SEPARATOR}{mapping.get(str(label), str(label))}" for label in labels]
        local = sorted(set(tags))
        offset = len(concepts)
        concepts += local
        concept_dataset += [index] * len(local)
        sentence_concept += [offset + local.index(tag) for tag in tags]
        sentence_dataset += [index] * len(tags)
        texts += list(data_texts)
    matrix = np.zeros((len(texts), len(concepts)), dtype=bool)
    matrix[np.arange(len(texts)), sentence_concept] = True
    return ConceptTags(
        texts, matrix, concepts, names, np.asarray(sentence_dataset), np.asarray(concept_dataset)
    )


def rank_auroc(values: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUROC [concept, unit] of ``values`` [sentence, unit] per column of ``positive`` [sentence, concept].

    Mann-Whitney: AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg) with R_pos the sum of the
    positives' average ranks (ties count one half). NaN where a concept has no positives or no negatives.
    """
    ranks = rankdata(np.asarray(values, dtype=np.float64), axis=0)  # [sentence, unit]
    positive = np.asarray(positive, dtype=np.float64)
    n_pos = positive.sum(axis=0)  # [concept]
    n_neg = positive.shape[0] - n_pos
    u = positive.T @ ranks - (n_pos * (n_pos + 1) / 2)[:, None]  # [concept, unit]
    with np.errstate(divide="ignore", invalid="ignore"):
        auroc = u / (n_pos * n_neg)[:, None]
    auroc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auroc


def heldout_auroc(values: np.ndarray, concepts: ConceptTags, heldout: np.ndarray) -> np.ndarray:
    """AUROC [concept, unit] on the ``heldout`` sentences, each concept within its own dataset."""
    auroc = np.full((len(concepts.concepts), values.shape[1]), np.nan)
    for index in range(len(concepts.datasets)):
        rows = heldout[concepts.sentence_dataset[heldout] == index]
        columns = np.flatnonzero(concepts.concept_dataset == index)
        if len(rows):
            auroc[columns] = rank_auroc(values[rows], concepts.tags[np.ix_(rows, columns)])
    return auroc


def true_concepts(auroc: np.ndarray, threshold: float = DEFAULT_AUROC_THRESHOLD) -> list[set[int]]:
    """Per unit, the concepts whose AUROC [concept, unit] reaches ``threshold`` (NaN never does)."""
    unit, concept = np.nonzero(np.nan_to_num(auroc.T, nan=-np.inf) >= threshold)  # sorted by unit
    groups = np.split(concept, np.searchsorted(unit, np.arange(1, auroc.shape[1])))
    return [set(group.tolist()) for group in groups]


def top_exemplars(values: np.ndarray, k: int) -> np.ndarray:
    """[unit, k] row indices of each unit's ``k`` largest ``values`` [sentence, unit], largest first."""
    if not 1 <= k <= values.shape[0]:
        raise InvalidInput(f"Exemplars per neuron must be between 1 and {values.shape[0]} (got {k}).")
    part = np.argpartition(-values, k - 1, axis=0)[:k]  # [k, unit]
    order = np.argsort(-np.take_along_axis(values, part, axis=0), axis=0, kind="stable")
    return np.take_along_axis(part, order, axis=0).T


def predicted_concepts(
    values: np.ndarray, tags: np.ndarray, calibration: np.ndarray, k: int, alpha: float = DEFAULT_ALPHA
) -> list[list[int]]:
    """Ranked enriched concepts of each unit from its top-``k`` calibration sentences (all ranked)."""
    exemplars = calibration[top_exemplars(values[calibration], k)]  # [unit, k] sentence ids
    return associate(exemplars, tags, universe=calibration, alpha=alpha).top(tags.shape[1])


def precision_over_predicted(predicted: list[list[int]], truth: list[set[int]], k: int) -> float:
    """Mean |P_i & T_i| / |P_i| over *all* units with a prediction, true concepts or not (NaN if none).

    Complements precision@k, which only looks at units that have a true concept.
    """
    pairs = zip(predicted, truth, strict=True)
    values = [len(set(ranked[:k]) & true) / len(ranked[:k]) for ranked, true in pairs if ranked]
    return float(np.mean(values)) if values else float("nan")


@dataclass
class DescriptionScores:
    """Ground truth and predictions for one set of units (neurons or random directions), layer-major."""

    auroc: np.ndarray  # [concept, unit] held-out
    truth: list[set[int]]
    predicted: list[list[int]]  # ranked significant concepts, all of them

    def metrics(self, k: int, keep: set[int] | None = None, units: slice = slice(None)) -> dict:
        """precision@k, recall@k, evaluated units; concepts restricted to ``keep`` when given."""
        truth, predicted = self.truth[units], self.predicted[units]
        if keep is not None:
            truth = [true & keep for true in truth]
            predicted = [[c for c in ranked if c in keep] for ranked in predicted]
        precision, recall, evaluated = precision_recall_at_k(predicted, truth, k)
        return {
            "precision": _number(precision),
            "recall": _number(recall),
            "precision_over_predicted": _number(precision_over_predicted(predicted, truth, k)),
            "evaluated": evaluated,
            "units": len(truth),
            "fraction_with_truth": evaluated / max(len(truth), 1),
            "fraction_with_prediction": float(np.mean([bool(p) for p in predicted])) if predicted else 0.0,
        }


def score_units(
    values: np.ndarray,
    concepts: ConceptTags,
    calibration: np.ndarray,
    heldout: np.ndarray,
    *,
    exemplars: int,
    threshold: float,
    alpha: float,
) -> DescriptionScores:
    """Truth on ``heldout``, predictions from ``calibration``, for ``values`` [sentence, unit]."""
    auroc = heldout_auroc(values, concepts, heldout)
    predicted = predicted_concepts(values, concepts.tags, calibration, exemplars, alpha)
    return DescriptionScores(auroc, true_concepts(auroc, threshold), predicted)


def random_directions(activations: np.ndarray, count: int, seed: int) -> np.ndarray:
    """[sentence, layer, count]: ``activations`` [sentence, layer, unit] projected on random unit vectors."""
    rng = np.random.default_rng(seed)
    layers, units = activations.shape[1:]
    projected = np.empty((activations.shape[0], layers, count), dtype=np.float32)
    for layer in range(layers):
        directions = rng.standard_normal((units, count))  # [unit, direction]
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        projected[:, layer] = activations[:, layer].astype(np.float64) @ directions
    return projected


def permutation_baseline(
    scores: DescriptionScores, ks: Sequence[int], seed: int, repeats: int = PERMUTATION_REPEATS
) -> dict[str, dict]:
    """Mean precision/recall@k when the evaluated units' predictions are shuffled among them."""
    evaluated = [i for i, true in enumerate(scores.truth) if true]
    truth = [scores.truth[i] for i in evaluated]
    rng = np.random.default_rng([seed, 1])
    results: dict[int, list[tuple[float, float]]] = {k: [] for k in ks}
    for _ in range(repeats if evaluated else 0):
        shuffled = [scores.predicted[evaluated[j]] for j in rng.permutation(len(evaluated))]
        for k in ks:
            results[k].append(precision_recall_at_k(shuffled, truth, k)[:2])
    return {
        str(k): {
            "precision": _number(np.nanmean([p for p, _ in pairs]) if pairs else np.nan),
            "recall": _number(np.nanmean([r for _, r in pairs]) if pairs else np.nan),
            "evaluated": len(evaluated),
        }
        for k, pairs in results.items()
    }


def _number(value: float) -> float | None:
    """A JSON-safe float (NaN -> None)."""
    return None if value is None or np.isnan(value) else float(value)


@dataclass
class NeuronDescriptionEvaluation:
    """Scores of the neurons and of the controls; ``summary()`` and ``table()`` are JSON-able."""

    params: dict
    concepts: ConceptTags
    layers: int
    units: int
    neurons: DescriptionScores
    random: DescriptionScores | None
    permutation: dict[str, dict]
    counts: dict
    seconds: dict[str, float] = field(default_factory=dict)

    def _dataset_keep(self) -> dict[str, set[int]]:
        where = self.concepts.concept_dataset
        return {
            name: set(np.flatnonzero(where == i).tolist()) for i, name in enumerate(self.concepts.datasets)
        }

    def _block(self, scores: DescriptionScores) -> dict:
        top = self.params["top"]
        block = scores.metrics(top)
        block["at_k"] = {str(k): scores.metrics(k) for k in sorted({*REPORTED_KS, top})}
        block["per_dataset"] = {
            name: scores.metrics(top, keep) for name, keep in self._dataset_keep().items()
        }
        return block

    def _per_concept(self) -> dict[str, dict[str, int]]:
        top = self.params["top"]
        true = np.zeros(len(self.concepts.concepts), dtype=int)
        predicted = np.zeros_like(true)
        for truth, ranked in zip(self.neurons.truth, self.neurons.predicted, strict=True):
            true[list(truth)] += 1
            predicted[ranked[:top]] += 1
        return {
            c: {"true": int(t), "predicted": int(p)}
            for c, t, p in zip(self.concepts.concepts, true, predicted, strict=True)
        }

    def _per_layer(self) -> list[dict]:
        top, width = self.params["top"], self.units
        return [
            {"layer": layer, **self.neurons.metrics(top, units=slice(layer * width, (layer + 1) * width))}
            for layer in range(self.layers)
        ]

    def summary(self) -> dict:
        control = {PERMUTED: self.permutation}
        if self.random is not None:
            control[RANDOM] = self._block(self.random)
        return {
            "params": self.params,
            "concepts": self.concepts.concepts,
            "metrics": self._block(self.neurons),
            "per_layer": self._per_layer(),
            "per_concept": self._per_concept(),
            "control": control,
            "counts": self.counts,
            "seconds": self.seconds,
        }

    def table(self) -> dict:
        """One row per (units, scope): evaluated units and precision/recall at ``top``."""
        top = self.params["top"]
        columns = ["units", "scope", "evaluated", "fraction_with_truth", f"precision@{top}", f"recall@{top}"]
        rows = []
        for label, scores in ((self.params.get("basis", NEURONS), self.neurons), (RANDOM, self.random)):
            if scores is None:
                continue
            scopes = {"all": None, **self._dataset_keep()}
            for scope, keep in scopes.items():
                m = scores.metrics(top, keep)
                rows.append(
                    [label, scope, m["evaluated"], m["fraction_with_truth"], m["precision"], m["recall"]]
                )
        chance = self.permutation[str(top)]
        rows.append([PERMUTED, "all", chance["evaluated"], None, chance["precision"], chance["recall"]])
        return {"columns": columns, "rows": rows}


def _check(exemplars: int, top: int, threshold: float, directions: int | None) -> None:
    if exemplars < 1 or top < 1:
        raise InvalidInput("Exemplars per neuron and top must be at least 1.")
    if not 0.5 < threshold <= 1:
        raise InvalidInput(f"The AUROC threshold must be in (0.5, 1] (got {threshold}).")
    if directions is not None and directions < 0:
        raise InvalidInput("The number of random directions must be >= 0 (0 = no random control).")


def evaluate_activations(
    activations: np.ndarray,
    concepts: ConceptTags,
    *,
    exemplars: int = DEFAULT_EXEMPLARS,
    top: int = DEFAULT_TOP,
    threshold: float = DEFAULT_AUROC_THRESHOLD,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    directions: int | None = None,
    basis: str = NEURONS,
    control_space: np.ndarray | None = None,
) -> NeuronDescriptionEvaluation:
    """The protocol on given ``activations`` [sentence, layer, unit] (rows match ``concepts.texts``).

    ``directions`` random directions per layer for the control (None = as many as units, 0 = none), drawn in
    the space of ``control_space`` [sentence, layer, dimension] (default: ``activations`` themselves; for
    dictionary features, the layer's own activations, so the control is a random direction of that layer).
    ``basis`` names the units in the table ("neurons", "features").
    """
    _check(exemplars, top, threshold, directions)
    activations = np.asarray(activations)
    if activations.ndim != 3 or activations.shape[0] != len(concepts.texts):
        raise InvalidInput("activations must be [sentence, layer, unit] with one row per sentence.")
    kept = np.flatnonzero(~np.isnan(activations).any(axis=(1, 2)))  # no NaN: a non-special token
    dropped = activations.shape[0] - len(kept)
    space = activations if control_space is None else np.asarray(control_space)
    activations, space, concepts = activations[kept], space[kept], concepts.subset(kept)
    calibration, heldout = split_sentences(len(kept), seed)
    layers, units = activations.shape[1:]
    options = {"exemplars": exemplars, "threshold": threshold, "alpha": alpha}
    neurons = score_units(activations.reshape(len(kept), -1), concepts, calibration, heldout, **options)
    count = units if directions is None else directions
    random = None
    if count:
        projected = random_directions(space, count, seed).reshape(len(kept), -1)
        random = score_units(projected, concepts, calibration, heldout, **options)
    params = {"top": top, "directions": count, "seed": seed, "basis": basis, **options}
    counts = {
        "sentences": len(kept),
        "dropped_sentences": dropped,
        "calibration": len(calibration),
        "heldout": len(heldout),
        "per_dataset": _dataset_counts(concepts, calibration, heldout),
        "neurons": layers * units,
    }
    permutation = permutation_baseline(neurons, sorted({*REPORTED_KS, top}), seed)
    return NeuronDescriptionEvaluation(params, concepts, layers, units, neurons, random, permutation, counts)


def _dataset_counts(concepts: ConceptTags, calibration: np.ndarray, heldout: np.ndarray) -> dict[str, dict]:
    where = concepts.sentence_dataset
    return {
        name: {
            "calibration": int((where[calibration] == i).sum()),
            "heldout": int((where[heldout] == i).sum()),
        }
        for i, name in enumerate(concepts.datasets)
    }


def evaluate_neuron_descriptions(
    loaded: LoadedModel,
    datasets: Sequence[tuple[str, list[str], list[str]]],
    *,
    label_names: Mapping[str, Mapping[str, str]] | None = None,
    exemplars: int = DEFAULT_EXEMPLARS,
    top: int = DEFAULT_TOP,
    threshold: float = DEFAULT_AUROC_THRESHOLD,
    seed: int = 0,
    directions: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
    activations_of: Callable[[list[str]], np.ndarray | tuple[np.ndarray, np.ndarray]] | None = None,
    basis: str = NEURONS,
) -> NeuronDescriptionEvaluation:
    """Run the protocol (module docstring) on ``loaded``'s FFN neurons over the pooled ``datasets``.

    ``activations_of(texts)``: the [sentence, layer, unit] maxima computed elsewhere (e.g. in shards on Ray
    workers); by default :func:`sentence_activations` here. It may return a pair (units, control space), as
    for dictionary features (``basis="features"``): random directions are then drawn in the second.
    """
    _check(exemplars, top, threshold, directions)
    concepts = concept_tags(datasets, label_names)
    start = clock()
    if activations_of is None:
        activations = sentence_activations(
            loaded, concepts.texts, batch_size=batch_size, max_tokens=max_tokens
        )
    else:
        activations = activations_of(concepts.texts)
    space = None
    if isinstance(activations, tuple):  # (units, the space random directions are drawn in)
        activations, space = activations
    middle = clock()
    evaluation = evaluate_activations(
        activations,
        concepts,
        exemplars=exemplars,
        top=top,
        threshold=threshold,
        seed=seed,
        directions=directions,
        basis=basis,
        control_space=space,
    )
    evaluation.params["model"] = loaded.name
    evaluation.seconds = {"activations": middle - start, "scoring": clock() - middle}
    return evaluation
