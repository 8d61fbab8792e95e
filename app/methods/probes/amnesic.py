"""The amnesic check: erase what the depth probe reads at layer L, let the model run on, see what it loses.

Elazar, Ravfogel, Jacovi & Goldberg, "Amnesic Probing: Behavioral Explanation with Amnesic Counterfactuals",
TACL 2021 (https://aclanthology.org/2021.tacl-1.10): a property matters to the model when removing it changes
the model's behaviour more than removing a random subspace of the same size does. Here the property is the
bucketed tree depth, removed with LEACE (Belrose et al., NeurIPS 2023; see ``erasure``) at every position of
hidden state L, special tokens and padding included; the behaviour is (a) a classifier's accuracy on a
labelled dataset and (b) the UUAS of the stored distance probes of every later layer l > L on the dev treebank
(Hewitt & Manning, NAACL 2019), each beside the random erasure of the same rank and beside no erasure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

from app.errors import InvalidInput
from app.methods.probes.erasure import BUCKET_NAMES, KINDS, ErasurePair, erasure_function
from app.methods.probes.features import compute_word_features
from app.methods.probes.probe_maps import ProbeWeights
from app.methods.probes.scoring import evaluate_probes
from app.methods.probes.treebank import TreeSentence
from app.modeling.heads import pooled_embeddings, text_batch
from app.modeling.interventions import spliced_hidden_state
from app.modeling.loading import LoadedModel
from app.modeling.targets import LinearHead

Progress = Callable[[int, int], None]
Classifier = LinearHead | Callable[[torch.Tensor], torch.Tensor]
CLASSIFY_BATCH = 32


def amnesic_table(
    loaded: LoadedModel,
    erasers: Mapping[int, ErasurePair],
    dev_sentences: Sequence[TreeSentence],
    probe_weights: ProbeWeights,
    classifier: Classifier | None = None,
    labelled: list[tuple[str, int]] | None = None,
    *,
    max_tokens: int,
    progress: Progress | None = None,
) -> dict:
    """Per erased layer: classifier accuracy and later layers' UUAS with no / LEACE / random erasure.

    ``classifier``: a fitted head (``labels``, ``weight``, ``bias`` over the L2-normalised mean-pooled last
    state), or a callable from those pooled embeddings [text, hidden] to logits; None uses the model's own
    logits when it is a sequence classifier, and skips (a) otherwise. ``progress(done, total)`` may raise.
    """
    scorer = _scorer(loaded, classifier) if labelled else None
    steps, done = 1 + len(KINDS) * len(erasers), 0
    timings: dict[str, float] = {}

    def measure(layer: int | None, arrays: Mapping[str, np.ndarray] | None) -> tuple[float | None, dict]:
        later = [other for other in probe_weights.layers if layer is None or other > layer]
        context = _erased(loaded, layer, arrays)
        accuracy, metrics = None, {}
        with context:
            if scorer is not None:
                accuracy = scorer(labelled, max_tokens)
            if later:
                features = compute_word_features(loaded, dev_sentences, max_tokens=max_tokens)
                metrics = evaluate_probes(features, _subset(probe_weights, later))["layers"]
        return accuracy, metrics

    clock = time.perf_counter()
    none_accuracy, none_metrics = measure(None, None)
    timings["none_s"] = time.perf_counter() - clock
    done += 1
    if progress:
        progress(done, steps)
    rows = []
    for layer in sorted(erasers):
        pair = erasers[layer]
        clock = time.perf_counter()
        measured = {}
        for kind in KINDS:
            measured[kind] = measure(layer, pair.arrays(kind))
            done += 1
            if progress:
                progress(done, steps)
        rows.append(_row(pair, none_accuracy, none_metrics, measured, probe_weights.layers))
        timings[f"layer_{layer}_s"] = time.perf_counter() - clock
    return {
        "buckets": BUCKET_NAMES,
        "classifier": _classifier_name(loaded, classifier) if scorer is not None else None,
        "labelled": len(labelled or []),
        "probe_layers": list(probe_weights.layers),
        "none": {"accuracy": none_accuracy, "probes": none_metrics},
        "rows": rows,
        "timings": timings,
    }


def _row(
    pair: ErasurePair,
    none_accuracy: float | None,
    none_metrics: dict,
    measured: dict[str, tuple[float | None, dict]],
    probe_layers: list[int],
) -> dict:
    later = [other for other in probe_layers if other > pair.layer]
    uuas = {"none": [none_metrics[str(other)]["uuas"] for other in later]}
    for kind in KINDS:
        uuas[kind] = [measured[kind][1][str(other)]["uuas"] for other in later]
    drops = {
        kind: float(np.mean([a - b for a, b in zip(uuas["none"], uuas[kind], strict=True)]))
        if later
        else None
        for kind in KINDS
    }
    return {
        "layer": pair.layer,
        "rank": pair.rank,
        "accuracy": {"none": none_accuracy, **{kind: measured[kind][0] for kind in KINDS}},
        "later_layers": later,
        "uuas": uuas,
        "mean_uuas_drop": drops,
        "probes": {kind: measured[kind][1] for kind in KINDS},
        "fit": pair.fit,
    }


def _erased(
    loaded: LoadedModel, layer: int | None, arrays: Mapping[str, np.ndarray] | None
) -> AbstractContextManager[None]:
    if layer is None or arrays is None:
        return nullcontext()
    return spliced_hidden_state(loaded, layer, erasure_function(arrays, loaded.device))


def _subset(weights: ProbeWeights, layers: list[int]) -> ProbeWeights:
    index = [weights.layers.index(layer) for layer in layers]
    return ProbeWeights(layers=layers, distance=weights.distance[index], depth=weights.depth[index])


def _classifier_name(loaded: LoadedModel, classifier: Classifier | None) -> str:
    if classifier is None:
        return "model logits"
    return "fitted head" if hasattr(classifier, "weight") else "callable"


def _scorer(loaded: LoadedModel, classifier: Classifier | None) -> Callable[[list, int], float]:
    """accuracy(labelled, max_tokens) for the chosen classifier (run inside the erasure context)."""
    if classifier is None:
        if loaded.head != "classification":
            raise InvalidInput(
                "The model is not a sequence classifier: give a fitted head to measure accuracy."
            )
        return lambda labelled, max_tokens: _accuracy(
            _model_logits(loaded, [t for t, _ in labelled], max_tokens), [int(y) for _, y in labelled]
        )
    labels = list(getattr(classifier, "labels", []) or [])

    def score(labelled: list[tuple[str, int]], max_tokens: int) -> float:
        pooled = torch.from_numpy(pooled_embeddings(loaded, [t for t, _ in labelled], max_tokens=max_tokens))
        if hasattr(classifier, "weight"):
            logits = pooled @ torch.as_tensor(classifier.weight).float().T + torch.as_tensor(classifier.bias)
        else:
            logits = classifier(pooled)
        gold = [labels.index(str(y)) if str(y) in labels else int(y) for _, y in labelled]
        return _accuracy(logits.detach().cpu().numpy(), gold)

    return score


@torch.no_grad()
def _model_logits(loaded: LoadedModel, texts: list[str], max_tokens: int) -> np.ndarray:
    chunks = []
    for start in range(0, len(texts), CLASSIFY_BATCH):
        batch = text_batch(loaded, texts[start : start + CLASSIFY_BATCH], max_tokens)
        chunks.append(loaded.model(**batch).logits.float().cpu().numpy())
    return np.concatenate(chunks)


def _accuracy(logits: np.ndarray, gold: list[int]) -> float:
    return float((logits.argmax(-1) == np.asarray(gold)).mean())
